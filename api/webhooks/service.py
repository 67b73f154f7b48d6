"""An account's webhook endpoints: create (the URL checked, the secret shown
once), list, delete, rotate the secret with a grace period, replay from a seq,
and read the delivery log."""

from __future__ import annotations

import asyncio
import enum
from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

from api import wire
from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.database import Pool, transaction
from api.shell.errors import FieldError, invalid, named_not_found, not_found
from api.shell.ids import new_id
from api.webhooks import signing, store
from api.webhooks.safety import UnsafeUrl, check_url

# every kind of change the account's feed carries (and so a webhook may ask for)
KINDS: tuple[str, ...] = tuple(str(c.__struct_config__.tag) for c in wire.CHANGES)
ChangeKind = enum.StrEnum("ChangeKind", [(k, k) for k in KINDS])  # type: ignore[misc]
CHECK_SECONDS = 3.0

Url = Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"^[^\x00 \t\n\r\x0b\x0c]*$")]
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]


class NewWebhook(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An endpoint: `https` (any URL with `ONTIME_WEBHOOK_ALLOW_PRIVATE=true`), the
    kinds of change it wants (none: every kind), and whether only late ones."""

    url: Url
    kinds: Annotated[list[ChangeKind], Meta(max_length=len(KINDS))] = []
    late_only: bool = False
    # admin keys: the account; customer keys: their own, always
    account_id: Id | None = None


class Rotate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # how long the previous secret still signs (both signatures are sent meanwhile)
    grace_seconds: Annotated[int, Meta(ge=0, le=7 * 86_400)] = 86_400


class WebhookOut(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    url: str
    kinds: list[str]
    late_only: bool
    created_at: datetime
    # the last seq delivered (or passed over as not wanted)
    delivered_seq: int
    # the delivery now due has failed since; null when nothing is failing
    failing_since: datetime | None
    failed_attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    disabled_at: datetime | None
    # while the previous secret still signs, until when
    previous_secret_until: datetime | None


class WebhookCreated(WebhookOut, kw_only=True):
    # shown once: the key to verify Ontime-Signature with
    secret: str


class Rotated(msgspec.Struct, kw_only=True):
    id: str
    secret: str
    previous_secret_until: datetime


class WebhookPage(msgspec.Struct):
    items: list[WebhookOut]
    next_cursor: str | None


class DeliveryOut(msgspec.Struct, kw_only=True):
    # the Ontime-Delivery header: the same on every retry of this change, new on a replay
    id: str
    seq: int
    attempts: int
    last_status: int | None
    last_error: str | None
    last_latency_ms: int | None
    delivered_at: datetime | None
    # when the next try is due; null once delivered
    next_attempt_at: datetime | None
    created_at: datetime


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryOut]
    # pass as `before` for older deliveries
    next_before: int | None


def webhook_out(endpoint: store.Endpoint, now: datetime) -> WebhookOut:
    grace = endpoint.previous_until if endpoint.previous_until and endpoint.previous_until > now else None
    return WebhookOut(
        id=endpoint.id,
        account_id=endpoint.account_id,
        url=endpoint.url,
        kinds=endpoint.kinds,
        late_only=endpoint.late_only,
        created_at=endpoint.created_at,
        delivered_seq=endpoint.delivered_seq,
        failing_since=endpoint.failing_since,
        failed_attempts=endpoint.attempts,
        next_attempt_at=endpoint.next_attempt_at,
        last_error=endpoint.last_error,
        disabled_at=endpoint.disabled_at,
        previous_secret_until=grace,
    )


async def create(pool: Pool, caller: Principal, data: NewWebhook, allow_private: bool) -> WebhookCreated:
    account_id = caller.account_scope or data.account_id
    if account_id is None:
        raise invalid([FieldError("$.account_id", "an admin key names the account the webhook is for")])
    try:
        await asyncio.wait_for(check_url(data.url, allow_private=allow_private), CHECK_SECONDS)
    except UnsafeUrl as refused:
        raise invalid([FieldError("$.url", str(refused))]) from None
    except TimeoutError:
        raise invalid([FieldError("$.url", f"the host did not resolve within {CHECK_SECONDS:g} s")]) from None
    secret, now = signing.new_secret(), utcnow()
    async with transaction(pool) as conn:
        if await conn.fetchval("select 1 from accounts where id = $1", account_id) is None:
            raise named_not_found("$.account_id", "account")
        row = await conn.fetchrow(
            store.INSERT,
            new_id("whk"),
            account_id,
            data.url,
            [str(k) for k in dict.fromkeys(data.kinds)],
            data.late_only,
            secret,
            now,
        )
    assert row is not None  # insert … returning
    endpoint = store.endpoint_from_row(row)
    return WebhookCreated(**msgspec.structs.asdict(webhook_out(endpoint, now)), secret=secret)


async def page(pool: Pool, caller: Principal, account_id: str | None, cursor: str | None, limit: int) -> WebhookPage:
    rows = await pool.fetch(store.LIST, caller.account_scope or account_id, cursor, limit + 1)
    now = utcnow()
    items = [webhook_out(store.endpoint_from_row(r), now) for r in rows[:limit]]
    return WebhookPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


async def read(pool: Pool, caller: Principal, webhook_id: str) -> WebhookOut:
    endpoint = await store.get(pool, webhook_id, caller.account_scope)
    if endpoint is None:
        raise not_found("webhook")
    return webhook_out(endpoint, utcnow())


async def delete(pool: Pool, caller: Principal, webhook_id: str) -> None:
    if await pool.fetchval(store.DELETE, webhook_id, caller.account_scope) is None:
        raise not_found("webhook")


async def rotate(pool: Pool, caller: Principal, webhook_id: str, data: Rotate) -> Rotated:
    secret, now = signing.new_secret(), utcnow()
    until = now + timedelta(seconds=data.grace_seconds)
    row = await pool.fetchrow(store.ROTATE, webhook_id, caller.account_scope, until, secret)
    if row is None:
        raise not_found("webhook")
    return Rotated(id=webhook_id, secret=secret, previous_secret_until=until)


async def replay(pool: Pool, caller: Principal, webhook_id: str, since: int) -> WebhookOut:
    row = await pool.fetchrow(store.REPLAY, webhook_id, caller.account_scope, since)
    if row is None:
        raise not_found("webhook")
    return webhook_out(store.endpoint_from_row(row), utcnow())


async def deliveries(pool: Pool, caller: Principal, webhook_id: str, before: int | None, limit: int) -> DeliveryPage:
    if await store.get(pool, webhook_id, caller.account_scope) is None:
        raise not_found("webhook")
    rows = await pool.fetch(store.DELIVERIES, webhook_id, before, limit + 1)
    items = [
        DeliveryOut(
            id=r["id"],
            seq=r["seq"],
            attempts=r["attempts"],
            last_status=r["last_status"],
            last_error=r["last_error"],
            last_latency_ms=r["last_latency_ms"],
            delivered_at=r["delivered_at"],
            next_attempt_at=None if r["delivered_at"] else r["due_at"],
            created_at=r["created_at"],
        )
        for r in rows[:limit]
    ]
    return DeliveryPage(items=items, next_before=items[-1].seq if len(rows) > limit else None)
