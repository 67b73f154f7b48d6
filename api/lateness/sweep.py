"""The deadline sweep: every promise that passes with its shipment still on the
way is recorded as broken, once, with a `late` change the live feed pushes.

Every process runs the sweep; `FOR UPDATE SKIP LOCKED` hands each due shipment
to one of them, and the `not late` condition, re-checked on the locked row,
makes the record exactly once. The query walks the partial index of open
promises by deadline, so its cost follows the shipments falling due, not the
size of the table.

A shipment the sweep cannot handle (the domain or the row mapper raises, or the
database refuses its update) is set aside (api/shell/set_aside.py) and the rest
of its batch is recorded all the same; the due query skips it until its retry,
so a thousand such rows at the head of the queue cannot starve the others."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from api.changes import log as change_log
from api.shell import database, set_aside
from api.shell.clock import utcnow
from api.shipments import store
from domain.shipment import Shipment

log = logging.getLogger("ontime.deadlines")

BATCH = 1000
LOOP = "deadline_sweep"

# The predicate repeats the partial index's (migrations/0002) word for word,
# so the planner can use it.
DUE = (
    store.SELECT_SHIPMENT
    + """where s.promised_by < $1 and not s.late
           and s.status not in ('delivered', 'returned_to_sender', 'cancelled')
           and not exists (select from set_aside a
                           where a.loop = 'deadline_sweep' and a.row_id = s.id and a.retry_after > $1)
         order by s.promised_by
         limit $2
         for update of s skip locked"""
)


Broken = tuple[Shipment, list[change_log.NewChange]]


async def sweep_once(pool: database.Pool, now: datetime, batch: int = BATCH) -> int:
    """Record one batch of broken promises; returns how many."""
    recorded, _ = await _sweep_batch(pool, now, batch)
    return recorded


async def _sweep_batch(pool: database.Pool, now: datetime, batch: int) -> tuple[int, bool]:
    """Record one batch; returns how many were recorded, and whether another batch may be due."""
    async with database.transaction(pool) as conn:
        rows = await conn.fetch(DUE, now, batch)
        broken: list[Broken] = []
        went_through: list[str] = []
        aside = 0
        for row in rows:
            try:  # the domain decides, row by row, before anything is written
                shipment = store.shipment_from_row(row)
                if shipment.break_promise(now):
                    broken.append((shipment, change_log.drain_changes(shipment, now)))
                went_through.append(shipment.id)
            except Exception as exc:
                await set_aside.put(conn, LOOP, row["id"], exc, now)
                aside += 1
        saved = await _save(conn, broken, now)
        refused = {shipment.id for shipment, _ in broken} - saved
        aside += len(refused)
        await set_aside.clear(conn, LOOP, [i for i in went_through if i not in refused])
    # a full batch that changed something may have more behind it
    return len(saved), len(rows) == batch and len(saved) + aside > 0


async def _save(conn: database.Connection, broken: list[Broken], now: datetime) -> set[str]:
    """Save the batch in one go; should the database refuse it, save it row by
    row, each in a savepoint, and set aside the rows it refuses. Returns the ids saved."""
    if not broken:
        return set()
    try:
        async with conn.transaction():  # a savepoint: a refusal leaves the sweep's transaction usable
            await _write(conn, broken)
        return {shipment.id for shipment, _ in broken}
    except database.CONNECTION_LOST:
        raise
    except Exception:
        log.warning("the database refused a batch of %d broken promise(s); saving them one by one", len(broken))
    saved: list[Broken] = []
    for one in broken:
        try:
            async with conn.transaction():
                await _write(conn, [one], append=False)
            saved.append(one)
        except database.CONNECTION_LOST:
            raise
        except Exception as exc:
            await set_aside.put(conn, LOOP, one[0].id, exc, now)
    # one append for the rows saved, last: the change log's lock is then held
    # only to commit, not across the row-by-row saves
    await change_log.append(conn, [change for _, changes in saved for change in changes])
    return {shipment.id for shipment, _ in saved}


async def _write(conn: database.Connection, broken: list[Broken], *, append: bool = True) -> None:
    await store.save(conn, [shipment for shipment, _ in broken], {shipment.id: None for shipment, _ in broken})
    if append:
        # the change log's append goes last: its lock is held to commit
        await change_log.append(conn, [change for _, changes in broken for change in changes])


async def sweep(pool: database.Pool, now: datetime, batch: int = BATCH) -> int:
    """Record every promise broken by `now`, a batch per transaction."""
    total = 0
    while True:
        recorded, more = await _sweep_batch(pool, now, batch)
        total += recorded
        if not more:
            return total


async def run(pool: database.Pool, interval: float, clock: Callable[[], datetime] = utcnow) -> None:
    """Sweep every `interval` seconds. Each batch reads the clock afresh (a
    backlog also takes in what fell due meanwhile), and a long sweep shortens
    the pause after it rather than adding to it. A row that fails is set aside
    inside the sweep; what reaches this loop is the database being away (said
    once, not every `interval`) or a bug, and neither stops it for good."""
    unavailable = False
    while True:
        started = time.monotonic()
        try:
            total, more = 0, True
            while more:
                recorded, more = await _sweep_batch(pool, clock(), BATCH)
                total += recorded
            if total:
                log.info("recorded %d broken promise(s)", total)
            await set_aside.count(pool, LOOP)
            unavailable = False
        except database.UNREACHABLE as exc:
            if not unavailable:
                log.warning("deadline sweep: %s; retrying every %s s", exc, interval)
            unavailable = True
        except Exception:
            log.exception("deadline sweep failed; retrying")
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
