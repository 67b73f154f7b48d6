"""Lateness records and the monthly on-time report, computed in the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from api.shell.database import CONNECTION_LOST, Connection, Executor
from domain import report as report_rules

GroupBy = Literal["carrier", "lane", "account"]

GROUP_KEYS: dict[str, str] = {
    "carrier": "s.carrier",
    "account": "s.account_id",
    # origin country to destination country, kept on the row (migrations/0023)
    "lane": "s.lane",
}

# One pass over the shipments due in the month, with the exceptions of the
# month before (for the recurring problems): every figure of the month's rows
# comes from it. A shipment counts in the month its promise falls due in its
# account's time zone: surely when a day or more inside the month's UTC bounds
# (no offset reaches a day), else by its local time, the only rows that need
# their account's zone (read once, as a map, not joined to every row). Its
# bucket follows domain.promise.is_late at $12 (now): late if a record stands,
# delivered after the promise, or still on its way past it. The join on k
# turns each row's month and bucket into flags computed once (not once per
# count) and tells the planner how few they are, so the rows are counted by
# group and reason in parallel workers; the delays come out per cell
# (report_delays), for avg and percentile_cont over exactly the late ones. The
# record's delay and the rating are kept on the shipment (migrations/0023).
#
# $1-$2: the rows scanned, as UTC (a day around both months); $3: before it,
# exceptions only; $4-$5, $6-$7: surely the month, surely the month before
# (UTC); $8, $9: the month's first day and the month before's (local); $10 an
# account, $11 a carrier (both optional).
REPORT = """
with cells as materialized (
    select {key} as grp, s.reason,
           count(*) filter (where k.due) as due,
           count(*) filter (where k.on_time) as on_time,
           count(*) filter (where k.late) as late,
           count(*) filter (where k.open) as open,
           count(*) filter (where k.closed) as closed_undelivered,
           count(s.delivered_at) filter (where k.due) as delivered,
           count(s.rating) filter (where k.on_time) as rated_on_time,
           count(*) filter (where k.on_time and s.rating >= 4) as satisfied_on_time,
           count(s.rating) filter (where k.late) as rated_late,
           count(*) filter (where k.late and s.rating >= 4) as satisfied_late,
           count(s.rating) filter (where k.due) as rated,
           count(*) filter (where k.due and s.rating >= 4) as satisfied,
           count(*) filter (where not k.due) as due_before,
           report_delays(d.delay) filter (where k.late and d.delay is not null) as delays
    from shipments s
    cross join lateral (
        select coalesce(case when s.late then s.late_delay_seconds end,
                        extract(epoch from s.delivered_at - s.promised_by)::bigint) as delay
    ) d
    -- each row's month (0: the month, 1: the month before) and bucket, once
    join (values (0, true, true, false, false, false), (1, true, false, true, false, false),
                 (2, true, false, false, true, false), (3, true, false, false, false, true),
                 (4, false, false, false, false, false), (5, false, false, false, false, false),
                 (6, false, false, false, false, false), (7, false, false, false, false, false))
         k (code, due, late, on_time, closed, open)
      on k.code = 4 * case
                        when s.promised_by >= $4 and s.promised_by < $5 then 0
                        when s.promised_by >= $6 and s.promised_by < $7 then 1
                        else case date_trunc('month', s.promised_by at time zone (
                                      (select jsonb_object_agg(id, timezone) from accounts
                                       where $10::text is null or id = $10) ->> s.account_id))
                               when $8::timestamp then 0 when $9::timestamp then 1 end
                      end
                + case
                    when s.late or s.delivered_at > s.promised_by
                         or (s.delivered_at is null and s.status not in ('delivered', 'returned_to_sender', 'cancelled')
                             and s.promised_by < $12) then 0
                    when s.delivered_at is not null then 1
                    when s.status in ('returned_to_sender', 'cancelled') then 2
                    else 3
                  end
    where s.promised_by >= $1 and s.promised_by < $2
      and (s.promised_by >= $3 or s.reason is not null)
      and ($10::text is null or s.account_id = $10)
      and ($11::text is null or s.carrier = $11)
    group by grp, s.reason
), delays as (
    select c.grp, avg(d) as mean_delay, percentile_cont(0.9) within group (order by d) as p90_delay
    from cells c cross join lateral unnest(c.delays) d
    group by grouping sets ((c.grp), ())
)
select f.*, d.mean_delay, d.p90_delay
from (
    select grp, reason, grouping(grp) as every_group, grouping(reason) as every_reason,
           sum(due) as due, sum(on_time) as on_time, sum(late) as late, sum(open) as open,
           sum(closed_undelivered) as closed_undelivered, sum(delivered) as delivered,
           sum(rated_on_time) as rated_on_time, sum(satisfied_on_time) as satisfied_on_time,
           sum(rated_late) as rated_late, sum(satisfied_late) as satisfied_late,
           sum(rated) as rated, sum(satisfied) as satisfied, sum(due_before) as due_before
    from cells
    group by grouping sets ((grp), (), (grp, reason), (reason))
) f
left join delays d on f.every_reason = 1 and f.grp is not distinct from d.grp
order by f.every_reason desc, f.grp nulls last, f.reason
"""


# Cases opened in the month, in their account's time zone, grouped as the
# shipments are (a case on an account, with no shipment, has no carrier or lane:
# it counts in the total, and under its account when grouped by account). The
# case keeps its shipment's carrier and lane (migrations/0023).
CASE_GROUP_KEYS: dict[str, str] = {
    "carrier": "c.carrier",
    "account": "c.account_id",
    "lane": "c.lane",
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
where c.opened_at >= $1::date - interval '1 day'
  and c.opened_at < ($1::date + interval '1 month') + interval '1 day'
  and (c.opened_at at time zone a.timezone) >= $1::date
  and (c.opened_at at time zone a.timezone) < $1::date + interval '1 month'
  and ($2::text is null or c.account_id = $2)
  and ($3::text is null or c.carrier = $3)
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
    before = report_rules.previous_month(month)
    cases_sql = CASES.format(key=CASE_GROUP_KEYS[group_by])
    rows, cases, cases_before = await _fetch_each(
        conn,
        (REPORT.format(key=GROUP_KEYS[group_by]), _report_args(month, before, account_id, carrier, now)),
        (cases_sql, (month, account_id, carrier)),
        (cases_sql, (before, account_id, carrier)),
    )
    figures_of = {r["grp"]: r for r in rows if r["every_reason"] and r["due"]}
    reasons, reasons_before = _reasons(rows, "due"), _reasons(rows, "due_before")
    types, types_before = _case_types(cases), _case_types(cases_before)
    case_figures = {(r["grp"], r["every_group"]): r for r in cases if r["every_type"]}

    def row(group: str | None) -> OnTimeRow:
        whole = group is None  # the total: the grouping set without the group, whose group is null
        return _row(
            group,
            figures_of.get(group),
            _top_reasons(reasons.get(group, {})),
            case_figures.get((group, 1 if whole else 0)),
            types.get((group, whole), {}),
            [
                *_recurring("exception_reason", reasons.get(group, {}), reasons_before.get(group, {})),
                *_recurring("case_type", types.get((group, whole), {}), types_before.get((group, whole), {})),
            ],
        )

    return OnTimeReport(
        month=month.strftime("%Y-%m"),
        previous_month=before.strftime("%Y-%m"),
        group_by=group_by,
        rows=[row(group) for group in figures_of if group is not None],
        total=row(None),
    )


def _report_args(
    month: date, before: date, account_id: str | None, carrier: str | None, now: datetime
) -> tuple[object, ...]:
    """REPORT's parameters: the months' bounds as UTC instants and as local times."""
    start, following, previous = (datetime(d.year, d.month, 1) for d in (month, _next_month(month), before))
    day = timedelta(days=1)

    def utc(moment: datetime) -> datetime:
        return moment.replace(tzinfo=UTC)

    return (
        utc(previous) - day,
        utc(following) + day,
        utc(start) - day,
        utc(start) + day,
        utc(following) - day,
        utc(previous) + day,
        utc(start) - day,
        start,
        previous,
        account_id,
        carrier,
        now,
    )


def _next_month(month: date) -> date:
    return date(month.year + 1, 1, 1) if month.month == 12 else date(month.year, month.month + 1, 1)


# At most this many of a report's queries at once: each holds a connection for
# as long as it scans the month, and one report must not take the pool.
PARALLEL_QUERIES = 3


async def _fetch_each(conn: Executor, *queries: tuple[str, tuple[object, ...]]) -> list[list[asyncpg.Record]]:
    """Each query's rows: a few at once, on connections of their own, when given
    the pool; one after another on the caller's connection otherwise. No more
    run at once than the pool holds, so none of them waits for a connection
    behind its own siblings (and times out there, on a month of a million)."""
    if isinstance(conn, asyncpg.Pool):
        pool = conn
        turns = asyncio.Semaphore(max(1, min(PARALLEL_QUERIES, pool.get_max_size())))

        async def fetch(sql: str, args: tuple[object, ...]) -> list[asyncpg.Record]:
            async with turns:
                try:
                    async with pool.acquire() as connection:
                        return await _fetch_planned(connection, sql, args)
                except CONNECTION_LOST:  # a read: once more on a new connection, as the pool's own reads do
                    await pool.expire_connections()
                    async with pool.acquire() as connection:
                        return await _fetch_planned(connection, sql, args)

        return list(await asyncio.gather(*(fetch(sql, args) for sql, args in queries)))
    return [await _fetch_planned(conn, sql, args) for sql, args in queries]


# Each run is planned for its own month: after five runs of a prepared
# statement PostgreSQL may keep a generic plan, blind to the month's bounds,
# and REPORT's took five times as long. And the month's delays (a tenth of its
# rows) are sorted in memory, not on disk. Set for the transaction (the
# caller's, when it passes a connection in one).
PLANNING = "select set_config('plan_cache_mode', 'force_custom_plan', true), set_config('work_mem', '64MB', true)"


async def _fetch_planned(conn: Connection, sql: str, args: tuple[object, ...]) -> list[asyncpg.Record]:
    async with conn.transaction():  # a savepoint, in a caller's transaction
        await conn.execute(PLANNING)
        return await conn.fetch(sql, *args)


def _reasons(rows: list[asyncpg.Record], due: str) -> dict[str | None, dict[str, int]]:
    """Exception reasons by group (None: every group) for shipments due in the
    month ("due") or the month before ("due_before")."""
    by_group: dict[str | None, dict[str, int]] = {}
    for r in rows:
        if not r["every_reason"] and r["reason"] is not None and r[due]:
            by_group.setdefault(r["grp"], {})[r["reason"]] = int(r[due])
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
    group: str | None,
    r: asyncpg.Record | None,
    reasons: list[ReasonCount],
    cases: asyncpg.Record | None,
    case_types: dict[str, int],
    recurring: list[Recurring],
) -> OnTimeRow:
    def count(name: str) -> int:
        return 0 if r is None or r[name] is None else int(r[name])

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
        group=group,
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
