"""The change log: appended in the writer's transaction, read in seq order.

Ordering hazard: a sequence hands out numbers when asked, but transactions
commit in their own order, so a reader could see seq 7 committed while 6 is
still in flight and skip 6 for good. Writers therefore take one transaction-
scoped advisory lock right before appending and hold it to commit: numbers are
drawn and committed one transaction at a time, and a reader that sees N has
already been able to see everything below N. The lock is held only for the
append and the commit itself, not for the rest of the writer's work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from api import wire
from api.shell.database import Connection, Executor
from domain.shipment import Shipment

# The lock's key is in migrations/0004 (append_changes), which takes the lock,
# sends the NOTIFY (delivered at commit, never before: a wake-up for every
# process's live hub, which then reads the log itself) and inserts, in one call.
APPEND = "select append_changes($1::text[], $2::text[], $3::text[], $4::bytea[]) as seq"
CHANNEL = "ontime_changes"

AFTER_IN_ACCOUNT = """
select seq, body, account_id, shipment_id from changes where account_id = $1 and seq > $2 order by seq limit $3
"""
AFTER = "select seq, body, account_id, shipment_id from changes where seq > $1 order by seq limit $2"
# what a customer's poll needs (no audit row to write): seqs and bodies alone
BODIES_AFTER_IN_ACCOUNT = "select seq, body from changes where account_id = $1 and seq > $2 order by seq limit $3"


class NewChange(NamedTuple):
    account_id: str
    shipment_id: str | None  # None: a change about the account (a case on no shipment)
    kind: str
    body: bytes


async def append(conn: Connection, changes: Sequence[NewChange]) -> list[int]:
    """Append in the caller's transaction, as its last statement before commit."""
    if not changes:
        return []
    columns = list(zip(*changes, strict=False))
    rows = await conn.fetch(APPEND, *(list(c) for c in columns))
    return [r["seq"] for r in rows]


class Stored(NamedTuple):
    seq: int
    body: bytes
    account_id: str
    shipment_id: str


async def after(conn: Executor, account_id: str | None, seq: int, limit: int) -> list[Stored]:
    if account_id is None:
        rows = await conn.fetch(AFTER, seq, limit)
    else:
        rows = await conn.fetch(AFTER_IN_ACCOUNT, account_id, seq, limit)
    return [Stored(r["seq"], r["body"], r["account_id"], r["shipment_id"]) for r in rows]


async def page_in_account(conn: Executor, account_id: str, seq: int, limit: int) -> tuple[bytes, int]:
    """An account's changes after `seq` as the feed's JSON items (spliced, not
    decoded and encoded again), and the last seq among them (`seq` if none)."""
    rows = await conn.fetch(BODIES_AFTER_IN_ACCOUNT, account_id, seq, limit)
    return b",".join([with_seq(r[0], r[1]) for r in rows]), rows[-1][0] if rows else seq


def with_seq(seq: int, body: bytes) -> bytes:
    """The change message: its body with `seq` spliced in as the first field."""
    return b'{"seq":%d,%s' % (seq, body[1:])


def drain_changes(shipment: Shipment, now: datetime) -> list[NewChange]:
    """Encode what the domain says happened, each with the shipment as it stands now."""
    drained = []
    for change in shipment.changes:
        kind, body = wire.change_kind_and_body(shipment, change, now)
        drained.append(NewChange(shipment.account_id, shipment.id, kind, body))
    shipment.changes.clear()
    return drained
