"""The deadline sweep: every promise that passes with its shipment still on the
way is recorded as broken, once, with a `late` change the live feed pushes.

Every process runs the sweep; `FOR UPDATE SKIP LOCKED` hands each due shipment
to one of them, and the `not late` condition, re-checked on the locked row,
makes the record exactly once. The query walks the partial index of open
promises by deadline, so its cost follows the shipments falling due, not the
size of the table."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from api.changes import log as change_log
from api.shell import database
from api.shell.clock import utcnow
from api.shipments import store

log = logging.getLogger("ontime.deadlines")

BATCH = 1000

# The predicate repeats the partial index's (migrations/0002) word for word,
# so the planner can use it.
DUE = (
    store.SELECT_SHIPMENT
    + """where s.promised_by < $1 and not s.late
           and s.status not in ('delivered', 'returned_to_sender', 'cancelled')
         order by s.promised_by
         limit $2
         for update of s skip locked"""
)


async def sweep_once(pool: database.Pool, now: datetime, batch: int = BATCH) -> int:
    """Record one batch of broken promises; returns how many."""
    async with database.transaction(pool) as conn:
        shipments = [store.shipment_from_row(r) for r in await conn.fetch(DUE, now, batch)]
        broken, appended = [], []
        for shipment in shipments:
            if shipment.break_promise(now):
                broken.append(shipment)
                appended.extend(change_log.drain_changes(shipment, now))
        await store.save(conn, broken, {s.id: None for s in broken})
        await change_log.append(conn, appended)
    return len(broken)


async def sweep(pool: database.Pool, now: datetime, batch: int = BATCH) -> int:
    """Record every promise broken by `now`, a batch per transaction."""
    total = 0
    while True:
        count = await sweep_once(pool, now, batch)
        total += count
        if count < batch:
            return total


async def run(pool: database.Pool, interval: float, clock: Callable[[], datetime] = utcnow) -> None:
    """Sweep every `interval` seconds. Each batch reads the clock afresh (a
    backlog also takes in what fell due meanwhile), and a long sweep shortens
    the pause after it rather than adding to it."""
    while True:
        started = time.monotonic()
        try:
            total = 0
            while (count := await sweep_once(pool, clock())) > 0:
                total += count
                if count < BATCH:
                    break
            if total:
                log.info("recorded %d broken promise(s)", total)
        except Exception:  # a bug or a bad row must not stop lateness detection for good
            log.exception("deadline sweep failed; retrying")
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
