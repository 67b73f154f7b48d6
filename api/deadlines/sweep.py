"""The deadline sweep: one loop for every kind of deadline (a delivery promise,
a case's first response, a case's resolution).

A kind is a due query over its own partial index (rows whose deadline passed
and is not yet recorded, oldest first, `FOR UPDATE SKIP LOCKED`), a domain
decision per row, and a write. The loop runs each kind in batches, a batch per
transaction, the clock read afresh for each batch. Every process runs the
sweep; SKIP LOCKED hands each due row to one of them, and the kind's condition,
re-checked on the locked row, makes the record exactly once.

A row the sweep cannot handle (the domain or the row mapper raises, or the
database refuses its write) is set aside (api/shell/set_aside.py) under the
kind's name and the rest of its batch is recorded all the same; the due query
skips it until its retry, so a thousand such rows at the head of the queue
cannot starve the others."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
from prometheus_client import Counter

from api.changes import log as change_log
from api.shell import database, set_aside
from api.shell.clock import utcnow

log = logging.getLogger("ontime.deadlines")

BATCH = 1000

RECORDED = Counter("ontime_deadlines_recorded", "Deadlines the sweep recorded as passed unmet", ["kind"])

T = TypeVar("T")


@dataclass(frozen=True)
class DeadlineKind(Generic[T]):
    # the set-aside loop's name and the metrics label
    name: str
    # $1 now, $2 the batch size; must lock its rows FOR UPDATE SKIP LOCKED and
    # skip rows set aside under `name` until their retry
    due: str
    # the domain's decision for one locked row: what to record, or None (nothing
    # to record after all); raising sets the row aside
    decide: Callable[[asyncpg.Record, datetime], T | None]
    # saves the decided items in the sweep's transaction and returns the changes
    # to append (the sweep appends them last: the change log's lock is then
    # held only to commit)
    write: Callable[[database.Connection, Sequence[T], datetime], Awaitable[list[change_log.NewChange]]]
    item_id: Callable[[T], str]
    log_as: str = "deadline(s) passed"


async def sweep_batch(pool: database.Pool, kind: DeadlineKind[Any], now: datetime, batch: int) -> tuple[int, bool]:
    """Record one batch of one kind; returns how many were recorded, and whether another batch may be due."""
    async with database.transaction(pool) as conn:
        rows = await conn.fetch(kind.due, now, batch)
        decided: list[Any] = []
        went_through: list[str] = []
        aside = 0
        for row in rows:
            try:  # the domain decides, row by row, before anything is written
                item = kind.decide(row, now)
                if item is not None:
                    decided.append(item)
                went_through.append(row["id"])
            except Exception as exc:
                await set_aside.put(conn, kind.name, row["id"], exc, now)
                aside += 1
        saved = await _save(conn, kind, decided, now)
        refused = {kind.item_id(item) for item in decided} - saved
        aside += len(refused)
        await set_aside.clear(conn, kind.name, [i for i in went_through if i not in refused])
    RECORDED.labels(kind.name).inc(len(saved))
    # a full batch that changed something may have more behind it
    return len(saved), len(rows) == batch and len(saved) + aside > 0


async def _save(conn: database.Connection, kind: DeadlineKind[Any], items: list[Any], now: datetime) -> set[str]:
    """Save the batch in one go; should the database refuse it, save it row by
    row, each in a savepoint, and set aside the rows it refuses. Returns the ids saved."""
    if not items:
        return set()
    try:
        async with conn.transaction():  # a savepoint: a refusal leaves the sweep's transaction usable
            changes = await kind.write(conn, items, now)
            # the change log's append goes last: its lock is held to commit
            await change_log.append(conn, changes)
        return {kind.item_id(item) for item in items}
    except database.CONNECTION_LOST:
        raise
    except Exception:
        log.warning("%s: the database refused a batch of %d; saving them one by one", kind.name, len(items))
    saved: set[str] = set()
    appended: list[change_log.NewChange] = []
    for item in items:
        try:
            async with conn.transaction():
                appended.extend(await kind.write(conn, [item], now))
            saved.add(kind.item_id(item))
        except database.CONNECTION_LOST:
            raise
        except Exception as exc:
            await set_aside.put(conn, kind.name, kind.item_id(item), exc, now)
    # one append for the rows saved, last: the change log's lock is then held
    # only to commit, not across the row-by-row saves
    await change_log.append(conn, appended)
    return saved


async def sweep(
    pool: database.Pool, now: datetime, kinds: Sequence[DeadlineKind[Any]], batch: int = BATCH
) -> dict[str, int]:
    """Record every deadline of these kinds passed by `now`, a batch per transaction; how many, per kind."""
    totals = {}
    for kind in kinds:
        total, more = 0, True
        while more:
            recorded, more = await sweep_batch(pool, kind, now, batch)
            total += recorded
        totals[kind.name] = total
    return totals


async def run(
    pool: database.Pool,
    interval: float,
    kinds: Sequence[DeadlineKind[Any]],
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Sweep every `interval` seconds. Each batch reads the clock afresh (a
    backlog also takes in what fell due meanwhile), and a long sweep shortens
    the pause after it rather than adding to it. A row that fails is set aside
    inside the sweep; what reaches this loop is the database being away (said
    once, not every `interval`) or a bug, and neither stops it for good."""
    unavailable = False
    while True:
        started = time.monotonic()
        try:
            for kind in kinds:
                total, more = 0, True
                while more:
                    recorded, more = await sweep_batch(pool, kind, clock(), BATCH)
                    total += recorded
                if total:
                    log.info("%s: recorded %d %s", kind.name, total, kind.log_as)
                await set_aside.count(pool, kind.name)
            unavailable = False
        except database.UNREACHABLE as exc:
            if not unavailable:
                log.warning("deadline sweep: %s; retrying every %s s", exc, interval)
            unavailable = True
        except Exception:
            log.exception("deadline sweep failed; retrying")
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
