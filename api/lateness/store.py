"""Lateness records and the monthly on-time report, computed in the database."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
import msgspec

from api.shell.database import Executor
from domain import report as report_rules

GroupBy = Literal["carrier", "lane", "account"]

GROUP_KEYS: dict[str, str] = {
    "carrier": "s.carrier",
    "account": "s.account_id",
    # lane: origin country to destination country
    "lane": "coalesce(s.origin->>'country', '?') || '-' || coalesce(s.destination->>'country', '?')",
}

# A shipment counts in the month its promise falls due, in its account's time
# zone. The first range (a day wider on each side, for every offset on Earth)
# lets the index on promised_by do the coarse cut; the second is exact.
# $1 is the month's first day, $2 an account, $3 a carrier (both optional).
DUE_IN_MONTH = """where s.promised_by >= $1::date - interval '1 day'
      and s.promised_by < ($1::date + interval '1 month') + interval '1 day'
      and (s.promised_by at time zone a.timezone) >= $1::date
      and (s.promised_by at time zone a.timezone) < $1::date + interval '1 month'
      and ($2::text is null or s.account_id = $2)
      and ($3::text is null or s.carrier = $3)"""

# Buckets follow domain.promise.is_late at $4 (now): late if a record stands,
# delivered after the promise, or still on its way past it.
REPORT = """
with due as (
    select {key} as grp, s.promised_by, s.delivered_at, s.status, s.late,
           s.reason as exception_reason, l.delay_seconds as record_delay, f.rating
    from shipments s
    join accounts a on a.id = s.account_id
    left join late_deliveries l on s.late and l.shipment_id = s.id
    left join feedback f on f.shipment_id = s.id
    {due_in_month}
), bucketed as (
    select grp, exception_reason, rating, delivered_at,
           coalesce(record_delay, extract(epoch from delivered_at - promised_by)::bigint) as delay,
           case
             when late or delivered_at > promised_by
                  or (delivered_at is null and status not in ('delivered', 'returned_to_sender', 'cancelled')
                      and promised_by < $4) then 'late'
             when delivered_at is not null then 'on_time'
             when status in ('returned_to_sender', 'cancelled') then 'closed'
             else 'open'
           end as bucket
    from due
)
select grp,
       count(*) as due,
       count(*) filter (where bucket = 'on_time') as on_time,
       count(*) filter (where bucket = 'late') as late,
       count(*) filter (where bucket = 'open') as open,
       count(*) filter (where bucket = 'closed') as closed_undelivered,
       avg(delay) filter (where bucket = 'late' and delay is not null) as mean_delay,
       percentile_cont(0.9) within group (order by delay) filter (where bucket = 'late' and delay is not null) as p90_delay,
       count(*) filter (where delivered_at is not null) as delivered,
       count(rating) filter (where bucket = 'on_time') as rated_on_time,
       count(rating) filter (where bucket = 'on_time' and rating >= 4) as satisfied_on_time,
       count(rating) filter (where bucket = 'late') as rated_late,
       count(rating) filter (where bucket = 'late' and rating >= 4) as satisfied_late,
       count(rating) as rated,
       count(rating) filter (where rating >= 4) as satisfied
from bucketed
group by grouping sets ((grp), ())
order by grp nulls last
"""

REASONS = """
select {key} as grp, s.reason as reason, count(*) as n
from shipments s
join accounts a on a.id = s.account_id
{due_in_month}
  and s.reason is not null
group by grouping sets ((1, 2), (2))
"""


# Cases opened in the month, in their account's time zone, grouped as the
# shipments are (a case on an account, with no shipment, has no carrier or lane:
# it counts in the total, and under its account when grouped by account).
CASE_GROUP_KEYS: dict[str, str] = {
    "carrier": "s.carrier",
    "account": "c.account_id",
    "lane": f"case when s.id is not null then {GROUP_KEYS['lane']} end",
}

CASES = """
select {key} as grp, c.type, grouping({key}) as every_group, grouping(c.type) as every_type,
       count(*) as opened,
       count(c.response_breached_at) as response_breached,
       count(c.resolution_breached_at) as resolution_breached,
       percentile_cont(0.5) within group (order by extract(epoch from c.first_response_at - c.opened_at))
           as median_first_response,
       percentile_cont(0.5) within group (order by extract(epoch from c.resolved_at - c.opened_at))
           as median_resolution
from cases c
join accounts a on a.id = c.account_id
left join shipments s on s.id = c.shipment_id
where c.opened_at >= $1::date - interval '1 day'
  and c.opened_at < ($1::date + interval '1 month') + interval '1 day'
  and (c.opened_at at time zone a.timezone) >= $1::date
  and (c.opened_at at time zone a.timezone) < $1::date + interval '1 month'
  and ($2::text is null or c.account_id = $2)
  and ($3::text is null or s.carrier = $3)
group by grouping sets (({key}, c.type), ({key}), (c.type), ())
"""


class ReasonCount(msgspec.Struct):
    reason: str
    count: int


class RatingSplit(msgspec.Struct, kw_only=True):
    ratings: int
    # the share of those ratings that are 4 or 5
    csat: float | None


class Satisfaction(msgspec.Struct, kw_only=True):
    delivered: int
    ratings: int
    # ratings / delivered
    response_rate: float | None
    csat: float | None
    # split by whether the delivery kept its promise: what a broken promise costs
    on_time: RatingSplit
    late: RatingSplit


class TypeCount(msgspec.Struct):
    type: str
    count: int


class CaseFigures(msgspec.Struct, kw_only=True):
    opened: int
    by_type: list[TypeCount]
    response_breached: int
    resolution_breached: int
    median_first_response_seconds: float | None
    median_resolution_seconds: float | None


class Recurring(msgspec.Struct, kw_only=True):
    kind: Literal["exception_reason", "case_type"]
    name: str
    count: int
    previous_count: int
    # count - previous_count
    change: int


class OnTimeRow(msgspec.Struct, kw_only=True):
    group: str | None
    due: int
    on_time: int
    late: int
    open: int
    closed_undelivered: int
    # on time among those whose outcome is known (on time or late)
    on_time_rate: float | None
    mean_delay_seconds: float | None
    p90_delay_seconds: float | None
    top_reasons: list[ReasonCount]
    satisfaction: Satisfaction
    cases: CaseFigures
    # the month's top exception reasons and top case types, beside the month before
    recurring_problems: list[Recurring]


class OnTimeReport(msgspec.Struct, kw_only=True):
    month: str
    # what recurring_problems compare with
    previous_month: str
    group_by: str
    rows: list[OnTimeRow]
    total: OnTimeRow


async def on_time_report(
    conn: Executor,
    month: date,
    group_by: GroupBy,
    now: datetime,
    account_id: str | None = None,
    carrier: str | None = None,
) -> OnTimeReport:
    key, case_key = GROUP_KEYS[group_by], CASE_GROUP_KEYS[group_by]
    before = report_rules.previous_month(month)
    reasons_sql, cases_sql = REASONS.format(key=key, due_in_month=DUE_IN_MONTH), CASES.format(key=case_key)
    rows, reason_rows, reason_rows_before, cases, cases_before = await _fetch_each(
        conn,
        (REPORT.format(key=key, due_in_month=DUE_IN_MONTH), (month, account_id, carrier, now)),
        (reasons_sql, (month, account_id, carrier)),
        (reasons_sql, (before, account_id, carrier)),
        (cases_sql, (month, account_id, carrier)),
        (cases_sql, (before, account_id, carrier)),
    )
    reasons, reasons_before = _reasons(reason_rows), _reasons(reason_rows_before)
    types, types_before = _case_types(cases), _case_types(cases_before)
    figures = {(r["grp"], r["every_group"]): r for r in cases if r["every_type"]}

    def row(r: asyncpg.Record | None) -> OnTimeRow:
        group = None if r is None else r["grp"]
        whole = group is None  # the total: the grouping set (), whose group is null
        return _row(
            r,
            _top_reasons(reasons.get(group, {})),
            figures.get((group, 1 if whole else 0)),
            types.get((group, whole), {}),
            [
                *_recurring("exception_reason", reasons.get(group, {}), reasons_before.get(group, {})),
                *_recurring("case_type", types.get((group, whole), {}), types_before.get((group, whole), {})),
            ],
        )

    made = [row(r) for r in rows if r["grp"] is not None]
    total = next((r for r in rows if r["grp"] is None), None)
    return OnTimeReport(
        month=month.strftime("%Y-%m"),
        previous_month=before.strftime("%Y-%m"),
        group_by=group_by,
        rows=made,
        total=row(total),
    )


# At most this many of a report's queries at once: each holds a connection for
# as long as it scans the month, and one report must not take the pool.
PARALLEL_QUERIES = 3


async def _fetch_each(conn: Executor, *queries: tuple[str, tuple[object, ...]]) -> list[list[asyncpg.Record]]:
    """Each query's rows: a few at once, on connections of their own, when given
    the pool; one after another in the caller's transaction otherwise. No more
    run at once than the pool holds, so none of them waits for a connection
    behind its own siblings (and times out there, on a month of a million)."""
    if isinstance(conn, asyncpg.Pool):
        pool = conn
        turns = asyncio.Semaphore(max(1, min(PARALLEL_QUERIES, pool.get_max_size())))

        async def fetch(sql: str, args: tuple[object, ...]) -> list[asyncpg.Record]:
            async with turns:
                return await pool.fetch(sql, *args)

        return list(await asyncio.gather(*(fetch(sql, args) for sql, args in queries)))
    return [await conn.fetch(sql, *args) for sql, args in queries]


def _reasons(rows: list[asyncpg.Record]) -> dict[str | None, dict[str, int]]:
    """Exception reasons by group (None: every group) for shipments due in the month."""
    by_group: dict[str | None, dict[str, int]] = {}
    for r in rows:
        by_group.setdefault(r["grp"], {})[r["reason"]] = r["n"]
    return by_group


def _case_types(rows: list[asyncpg.Record]) -> dict[tuple[str | None, bool], dict[str, int]]:
    """Cases opened by type, by (group, whether it is the total)."""
    by_group: dict[tuple[str | None, bool], dict[str, int]] = {}
    for r in rows:
        if not r["every_type"]:
            by_group.setdefault((r["grp"], bool(r["every_group"])), {})[r["type"]] = r["opened"]
    return by_group


def _top_reasons(counts: dict[str, int]) -> list[ReasonCount]:
    return [ReasonCount(reason=t.name, count=t.count) for t in report_rules.recurring(counts, {})]


def _recurring(
    kind: Literal["exception_reason", "case_type"], now: dict[str, int], before: dict[str, int]
) -> list[Recurring]:
    return [
        Recurring(kind=kind, name=t.name, count=t.count, previous_count=t.previous_count, change=t.change)
        for t in report_rules.recurring(now, before)
    ]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _row(
    r: asyncpg.Record | None,
    reasons: list[ReasonCount],
    cases: asyncpg.Record | None,
    case_types: dict[str, int],
    recurring: list[Recurring],
) -> OnTimeRow:
    def count(name: str) -> int:
        return 0 if r is None else int(r[name])

    case_figures = CaseFigures(
        opened=0 if cases is None else cases["opened"],
        by_type=[TypeCount(type=t, count=n) for t, n in sorted(case_types.items(), key=lambda x: (-x[1], x[0]))],
        response_breached=0 if cases is None else cases["response_breached"],
        resolution_breached=0 if cases is None else cases["resolution_breached"],
        median_first_response_seconds=None if cases is None else _seconds(cases["median_first_response"]),
        median_resolution_seconds=None if cases is None else _seconds(cases["median_resolution"]),
    )
    satisfaction = Satisfaction(
        delivered=count("delivered"),
        ratings=count("rated"),
        response_rate=report_rules.response_rate(count("rated"), count("delivered")),
        csat=report_rules.csat(count("satisfied"), count("rated")),
        on_time=RatingSplit(
            ratings=count("rated_on_time"), csat=report_rules.csat(count("satisfied_on_time"), count("rated_on_time"))
        ),
        late=RatingSplit(
            ratings=count("rated_late"), csat=report_rules.csat(count("satisfied_late"), count("rated_late"))
        ),
    )
    return OnTimeRow(
        group=None if r is None else r["grp"],
        due=count("due"),
        on_time=count("on_time"),
        late=count("late"),
        open=count("open"),
        closed_undelivered=count("closed_undelivered"),
        on_time_rate=report_rules.share(count("on_time"), count("on_time") + count("late")),
        mean_delay_seconds=None if r is None else _seconds(r["mean_delay"]),
        p90_delay_seconds=None if r is None else _seconds(r["p90_delay"]),
        top_reasons=reasons,
        satisfaction=satisfaction,
        cases=case_figures,
        recurring_problems=recurring,
    )


class LateDeliveryRecord(msgspec.Struct, kw_only=True):
    id: str
    shipment_id: str
    account_id: str
    carrier: str
    tracking_number: str
    reference: str | None
    promised_by: datetime
    detected_at: datetime
    detected_by: str
    status_at_detection: str | None
    location_at_detection: dict[str, Any] | None  # jsonb as the database holds it
    delivered_at: datetime | None
    delay_seconds: int | None
    closed_at: datetime | None


LATE_DELIVERIES = """
select l.id, l.shipment_id, l.account_id, l.carrier, s.tracking_number, s.reference,
       l.promised_by, l.detected_at, l.detected_by, l.status_at_detection,
       l.location_at_detection, l.delivered_at, l.delay_seconds, l.closed_at
from late_deliveries l join shipments s on s.id = l.shipment_id
where ($1::text is null or l.account_id = $1)
  and ($2::text is null or l.carrier = $2)
  and ($3::boolean is null or (l.closed_at is null) = $3)
  and ($4::timestamptz is null or l.promised_by >= $4)
  and ($5::timestamptz is null or l.promised_by < $5)
  and ($6::text is null or l.id < $6)
order by l.id desc
limit $7
"""


async def late_deliveries(
    conn: Executor,
    *,
    account_id: str | None,
    carrier: str | None,
    open_only: bool | None,
    promised_from: datetime | None,
    promised_before: datetime | None,
    before_id: str | None,
    limit: int,
) -> list[LateDeliveryRecord]:
    rows = await conn.fetch(
        LATE_DELIVERIES, account_id, carrier, open_only, promised_from, promised_before, before_id, limit
    )
    return [LateDeliveryRecord(**r) for r in rows]
