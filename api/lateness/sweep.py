"""Broken delivery promises, one kind of deadline the sweep (api/deadlines)
watches: every promise that passes with its shipment still on the way is
recorded as broken, once, with a `late` change the live feed pushes, and opens
a case when the account's setting asks for it.

The due query walks the partial index of open promises by deadline
(migrations/0002), so its cost follows the shipments falling due, not the size
of the table; the `not late` condition, re-checked on the locked row, makes the
record exactly once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg

from api.cases import service as cases
from api.changes import log as change_log
from api.deadlines import sweep as deadlines
from api.shell import database
from api.shell.clock import utcnow
from api.shipments import store
from domain.cases import CaseType, Trigger
from domain.shipment import Shipment

BATCH = deadlines.BATCH
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


def _decide(row: asyncpg.Record, now: datetime) -> Broken | None:
    shipment = store.shipment_from_row(row)
    if not shipment.break_promise(now):
        return None
    return shipment, change_log.drain_changes(shipment, now)


async def _write(conn: database.Connection, broken: Sequence[Broken], now: datetime) -> list[change_log.NewChange]:
    await store.save(conn, [shipment for shipment, _ in broken], {shipment.id: None for shipment, _ in broken})
    opened = await cases.open_automatic_many(
        conn,
        [(shipment.account_id, shipment.id) for shipment, _ in broken],
        type=CaseType.DELAY,
        trigger=Trigger.LATE,
        now=now,
    )
    return [change for _, changes in broken for change in changes] + opened


PROMISES: deadlines.DeadlineKind[Broken] = deadlines.DeadlineKind(
    name=LOOP,
    due=DUE,
    decide=_decide,
    write=_write,
    item_id=lambda broken: broken[0].id,
    log_as="broken promise(s)",
)


async def sweep_once(pool: database.Pool, now: datetime, batch: int = BATCH) -> int:
    """Record one batch of broken promises; returns how many."""
    recorded, _ = await deadlines.sweep_batch(pool, PROMISES, now, batch)
    return recorded


async def sweep(pool: database.Pool, now: datetime, batch: int = BATCH) -> int:
    """Record every promise broken by `now`, a batch per transaction."""
    return (await deadlines.sweep(pool, now, [PROMISES], batch))[LOOP]


async def run(pool: database.Pool, interval: float, clock: Callable[[], datetime] = utcnow) -> None:
    """The deadline loop for broken promises alone (the app runs every kind: api/app.py)."""
    await deadlines.run(pool, interval, [PROMISES], clock)
