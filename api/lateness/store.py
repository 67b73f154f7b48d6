"""Lateness records and the monthly on-time report, computed in the database."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import asyncpg
import msgspec

from api.shell.database import Executor

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
           s.reason as exception_reason, l.delay_seconds as record_delay
    from shipments s
    join accounts a on a.id = s.account_id
    left join late_deliveries l on s.late and l.shipment_id = s.id
    {due_in_month}
), bucketed as (
    select grp, exception_reason,
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
       percentile_cont(0.9) within group (order by delay) filter (where bucket = 'late' and delay is not null) as p90_delay
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


class ReasonCount(msgspec.Struct):
    reason: str
    count: int


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


class OnTimeReport(msgspec.Struct, kw_only=True):
    month: str
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
    key = GROUP_KEYS[group_by]
    rows = await conn.fetch(REPORT.format(key=key, due_in_month=DUE_IN_MONTH), month, account_id, carrier, now)
    reasons = await conn.fetch(REASONS.format(key=key, due_in_month=DUE_IN_MONTH), month, account_id, carrier)
    top: dict[str | None, list[ReasonCount]] = {}
    for r in sorted(reasons, key=lambda r: -r["n"]):
        group = top.setdefault(r["grp"], [])
        if len(group) < 3:
            group.append(ReasonCount(reason=r["reason"], count=r["n"]))
    made = [_row(r, top.get(r["grp"], [])) for r in rows]
    # the grouping set () is the total: the row whose group is null, last
    total = made.pop() if made and rows[-1]["grp"] is None else _row(None, [])
    return OnTimeReport(month=month.strftime("%Y-%m"), group_by=group_by, rows=made, total=total)


def _row(r: asyncpg.Record | None, reasons: list[ReasonCount]) -> OnTimeRow:
    if r is None:
        return OnTimeRow(
            group=None,
            due=0,
            on_time=0,
            late=0,
            open=0,
            closed_undelivered=0,
            on_time_rate=None,
            mean_delay_seconds=None,
            p90_delay_seconds=None,
            top_reasons=[],
        )
    decided = r["on_time"] + r["late"]
    return OnTimeRow(
        group=r["grp"],
        due=r["due"],
        on_time=r["on_time"],
        late=r["late"],
        open=r["open"],
        closed_undelivered=r["closed_undelivered"],
        on_time_rate=round(r["on_time"] / decided, 4) if decided else None,
        mean_delay_seconds=None if r["mean_delay"] is None else round(float(r["mean_delay"]), 1),
        p90_delay_seconds=None if r["p90_delay"] is None else round(float(r["p90_delay"]), 1),
        top_reasons=reasons,
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
