"""What the board shows, read in SQL: shipments in flight by status, the late
and at-risk ones, and on-time rates by day. `$1` is an account, or null for
every account (support and admin)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from api.shell.database import Executor

OPEN = "status not in ('delivered', 'returned_to_sender', 'cancelled')"

IN_FLIGHT = f"""
select status, count(*) as n from shipments
where ($1::text is null or account_id = $1) and {OPEN}
group by status
"""

# late: a lateness record stands, or the promise has passed; at risk: the carrier's estimate is after it
WATCH = f"""
select s.id, s.account_id, a.name as account_name, s.carrier, s.tracking_number, s.status, s.promised_by,
       s.estimated_delivery, s.late or s.promised_by < $2 as late
from shipments s join accounts a on a.id = s.account_id
where ($1::text is null or s.account_id = $1) and s.{OPEN}
  and (s.late or s.promised_by < $2 or s.estimated_delivery > s.promised_by)
order by (s.late or s.promised_by < $2) desc, s.promised_by
limit $3
"""

# deliveries by UTC day over the last $2 days: how many, and how many by their promise
BY_DAY = """
select date_trunc('day', delivered_at) as day, count(*) as delivered,
       count(*) filter (where not late and delivered_at <= promised_by) as on_time
from shipments
where ($1::text is null or account_id = $1) and delivered_at >= $3::timestamptz - make_interval(days => $2)
  and delivered_at < $3::timestamptz + interval '1 day'
group by 1 order by 1
"""

CSAT = """
select count(*) as ratings, count(*) filter (where rating >= 4) as satisfied from feedback
where ($1::text is null or account_id = $1) and received_at >= $2
"""


async def in_flight(conn: Executor, account_id: str | None) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await conn.fetch(IN_FLIGHT, account_id)}


async def watch(conn: Executor, account_id: str | None, now: datetime, limit: int = 50) -> list[asyncpg.Record]:
    return list(await conn.fetch(WATCH, account_id, now, limit))


async def by_day(conn: Executor, account_id: str | None, days: int, today: datetime) -> list[asyncpg.Record]:
    return list(await conn.fetch(BY_DAY, account_id, days, today))


async def csat(conn: Executor, account_id: str | None, since: datetime) -> tuple[int, int]:
    row = await conn.fetchrow(CSAT, account_id, since)
    return (0, 0) if row is None else (row["ratings"], row["satisfied"])
