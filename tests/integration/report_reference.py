"""The monthly report the straightforward way, for the tests to compare with:
the queries as first written (migrations/0023 moved the report off them), each
a pass of its own over the month, reading the lateness records, the ratings
and the cases' shipments from their own tables, not from the copies kept on
the rows the report scans."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from api.lateness import store
from domain import report as report_rules

GROUP_KEYS = {
    "carrier": "s.carrier",
    "account": "s.account_id",
    "lane": "coalesce(s.origin->>'country', '?') || '-' || coalesce(s.destination->>'country', '?')",
}

DUE_IN_MONTH = """where s.promised_by >= $1::date - interval '1 day'
      and s.promised_by < ($1::date + interval '1 month') + interval '1 day'
      and (s.promised_by at time zone a.timezone) >= $1::date
      and (s.promised_by at time zone a.timezone) < $1::date + interval '1 month'
      and ($2::text is null or s.account_id = $2)
      and ($3::text is null or s.carrier = $3)"""

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

CASE_GROUP_KEYS = {
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


def _reasons(rows: list[asyncpg.Record]) -> dict[str | None, dict[str, int]]:
    by_group: dict[str | None, dict[str, int]] = {}
    for r in rows:
        by_group.setdefault(r["grp"], {})[r["reason"]] = r["n"]
    return by_group


async def straightforward_report(
    conn: asyncpg.Connection | asyncpg.Pool,
    month: date,
    group_by: store.GroupBy,
    now: datetime,
    account_id: str | None = None,
    carrier: str | None = None,
) -> store.OnTimeReport:
    key, case_key = GROUP_KEYS[group_by], CASE_GROUP_KEYS[group_by]
    before = report_rules.previous_month(month)
    reasons_sql, cases_sql = REASONS.format(key=key, due_in_month=DUE_IN_MONTH), CASES.format(key=case_key)
    rows = await conn.fetch(REPORT.format(key=key, due_in_month=DUE_IN_MONTH), month, account_id, carrier, now)
    reasons = _reasons(await conn.fetch(reasons_sql, month, account_id, carrier))
    reasons_before = _reasons(await conn.fetch(reasons_sql, before, account_id, carrier))
    cases = await conn.fetch(cases_sql, month, account_id, carrier)
    cases_before = await conn.fetch(cases_sql, before, account_id, carrier)
    types, types_before = store._case_types(cases), store._case_types(cases_before)
    figures = {(r["grp"], r["every_group"]): r for r in cases if r["every_type"]}

    def row(r: asyncpg.Record | None) -> store.OnTimeRow:
        group = None if r is None else r["grp"]
        whole = group is None
        return store._row(
            group,
            r,
            store._top_reasons(reasons.get(group, {})),
            figures.get((group, 1 if whole else 0)),
            types.get((group, whole), {}),
            [
                *store._recurring("exception_reason", reasons.get(group, {}), reasons_before.get(group, {})),
                *store._recurring("case_type", types.get((group, whole), {}), types_before.get((group, whole), {})),
            ],
        )

    return store.OnTimeReport(
        month=month.strftime("%Y-%m"),
        previous_month=before.strftime("%Y-%m"),
        group_by=group_by,
        rows=[row(r) for r in rows if r["grp"] is not None],
        total=row(next((r for r in rows if r["grp"] is None), None)),
    )
