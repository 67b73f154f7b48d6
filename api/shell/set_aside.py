"""Rows a background loop could not process: set aside, so the rest go on.

A loop that fails on one row (a shipment the domain cannot load, an update the
database refuses) records it here, in its own transaction or savepoint, and
carries on with the others; its queries skip what is set aside until
`retry_after`. The first failure is logged with the row's id and counted in
/metrics; later ones push `retry_after` further out (one minute, doubling, at
most a day) and are not logged again. A row that succeeds on a retry leaves the
table; one that never does stays for an operator, with its last error."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Counter, Gauge

from api.shell.database import Executor

log = logging.getLogger("ontime.set_aside")

SET_ASIDE = Counter("ontime_rows_set_aside", "Rows a background loop could not process and set aside", ["loop"])
WAITING = Gauge("ontime_set_aside_rows", "Rows set aside now, as of the loop's last look", ["loop"])

FIRST_RETRY_SECONDS = 60.0
LAST_RETRY_SECONDS = 86_400.0

PUT = """
insert into set_aside (loop, row_id, error, attempts, first_seen, last_seen, retry_after)
values ($1, $2, $3, 1, $4::timestamptz, $4::timestamptz, $4::timestamptz + make_interval(secs => $5))
on conflict (loop, row_id) do update
    set error = excluded.error,
        attempts = set_aside.attempts + 1,
        last_seen = excluded.last_seen,
        retry_after = excluded.last_seen + make_interval(secs => least($6, $5 * 2 ^ least(set_aside.attempts, 20)))
returning attempts
"""
CLEAR = "delete from set_aside where loop = $1 and row_id = any($2::text[])"
COUNT = "select count(*) from set_aside where loop = $1"


async def put(conn: Executor, loop: str, row_id: str, error: BaseException, now: datetime) -> None:
    """Set the row aside (again), until its next retry. (The doubling stops at
    2^20, long past the one-day cap, so no count of attempts overflows it.)"""
    attempts = await conn.fetchval(PUT, loop, row_id, repr(error), now, FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS)
    if attempts == 1:
        SET_ASIDE.labels(loop).inc()
        log.error("%s set row %s aside; the others go on", loop, row_id, exc_info=error)
    else:
        log.debug("%s: row %s failed again (attempt %d)", loop, row_id, attempts)


async def clear(conn: Executor, loop: str, row_ids: Sequence[str]) -> None:
    """These rows went through: whichever of them were set aside are no longer."""
    if row_ids:
        await conn.execute(CLEAR, loop, list(row_ids))


async def count(conn: Executor, loop: str) -> int:
    """How many rows the loop has set aside now; also the gauge's new value."""
    waiting: int = await conn.fetchval(COUNT, loop)
    WAITING.labels(loop).set(waiting)
    return waiting


def skipped(loop: str, row_id: str, error: BaseException, skipped_now: int | None = None) -> None:
    """For a loop that reads rather than owns what it handles (the live hub's
    changes, the listener's notifications): the row is skipped, not stored;
    called once per row. `skipped_now`: how many this loop has skipped so far."""
    SET_ASIDE.labels(loop).inc()
    if skipped_now is not None:
        WAITING.labels(loop).set(skipped_now)
    log.error("%s skipped row %s; the others go on", loop, row_id, exc_info=error)
