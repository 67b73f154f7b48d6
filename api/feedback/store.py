"""The feedback table and the keys that sign feedback links."""

from __future__ import annotations

from api.shell.database import Executor
from api.wire import FeedbackOut
from domain.feedback import LinkKeys


async def link_keys(conn: Executor) -> LinkKeys:
    """Every key that verifies; the newest (highest kid) signs."""
    rows = await conn.fetch("select kid, secret from feedback_keys")
    if not rows:
        raise RuntimeError("the feedback_keys table is empty; apply the migrations (ontime migrate)")
    keys = {int(r["kid"]): bytes(r["secret"]) for r in rows}
    return LinkKeys(keys=keys, current=max(keys))


async def account_name(conn: Executor, account_id: str) -> str:
    name: str = await conn.fetchval("select name from accounts where id = $1", account_id)
    return name


INSERT = """
insert into feedback (shipment_id, account_id, rating, comment, delivered_at, on_time, received_at)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (shipment_id) do nothing
returning shipment_id, rating, comment, delivered_at, on_time, received_at
"""


async def insert(conn: Executor, account_id: str, feedback: FeedbackOut) -> bool:
    """False when the shipment was feedback already (the link is single-use)."""
    row = await conn.fetchrow(
        INSERT,
        feedback.shipment_id,
        account_id,
        feedback.rating,
        feedback.comment,
        feedback.delivered_at,
        feedback.on_time,
        feedback.received_at,
    )
    return row is not None


async def get(conn: Executor, shipment_id: str) -> FeedbackOut | None:
    row = await conn.fetchrow(
        "select shipment_id, rating, comment, delivered_at, on_time, received_at from feedback where shipment_id = $1",
        shipment_id,
    )
    return None if row is None else FeedbackOut(**dict(row))
