"""The retention loop: inbound payloads older than ONTIME_INBOUND_RETENTION_DAYS
(default 30) are deleted, the oldest first, a batch at a time. A batch the
database refuses is retried row by row; a row that still fails is set aside
(logged, counted in /metrics) and the loop goes on."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from prometheus_client import Counter

from api.inbound import store
from api.shell import database, set_aside
from api.shell.clock import utcnow

log = logging.getLogger("ontime.inbound.retention")

LOOP = "inbound_retention"
BATCH = 500
DELETED = Counter("ontime_inbound_payloads_expired", "Inbound payloads deleted after the retention period")
SKIP_SET_ASIDE = """
select id from inbound_payloads p
where received_at < $1
  and not exists (select 1 from set_aside s where s.loop = $3 and s.row_id = p.id and s.retry_after > $4)
order by received_at limit $2
"""


async def sweep(pool: database.Pool, retention_days: float) -> int:
    """One pass; how many payloads it deleted."""
    now = utcnow()
    cutoff = now - timedelta(days=retention_days)
    deleted = 0
    while True:
        ids = [r["id"] for r in await pool.fetch(SKIP_SET_ASIDE, cutoff, BATCH, LOOP, now)]
        if not ids:
            return deleted
        before = deleted
        try:
            async with database.transaction(pool) as conn:
                await conn.execute(store.DELETE_MANY, ids)
                await set_aside.clear(conn, LOOP, ids)
            deleted += len(ids)
        except database.DatabaseUnavailable:
            raise
        except Exception:  # one bad row spoils the batch: go row by row
            for payload_id in ids:
                try:
                    async with database.transaction(pool) as conn:
                        await conn.execute(store.DELETE_ONE, payload_id)
                        await set_aside.clear(conn, LOOP, [payload_id])
                    deleted += 1
                except database.DatabaseUnavailable:
                    raise
                except Exception as error:
                    async with database.transaction(pool) as conn:
                        await set_aside.put(conn, LOOP, payload_id, error, now)
        DELETED.inc(deleted - before)
        if len(ids) < BATCH:
            return deleted


async def run(pool: database.Pool, retention_days: float, interval_seconds: float = 3600.0) -> None:
    while True:
        try:
            await sweep(pool, retention_days)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("inbound retention pass failed; trying again in %s s", interval_seconds)
        await asyncio.sleep(interval_seconds)
