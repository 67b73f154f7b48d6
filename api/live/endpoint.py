"""`GET /v1/live`: the websocket of the live feed (docs/live.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect

from api.live import protocol
from api.live.hub import Hub, Subscriber, TooManySubscriptions, Trace, hub_of
from api.shell import audit, keys
from api.shell.auth import KeyCache, Principal, bearer_token
from api.shell.database import UNREACHABLE, Pool, pool_of
from api.shell.errors import field_error

AUTH_TIMEOUT = 5.0
# RFC 6455's "try again later": the database is away; reconnect shortly, with `since`
TRY_AGAIN_LATER = 1013


@websocket("/v1/live")
async def live(socket: WebSocket[Any, Any, State]) -> None:
    await socket.accept()
    hub = hub_of(socket.app)
    pool = pool_of(socket.app)
    key_cache: KeyCache = socket.app.state.key_cache
    token = bearer_token(socket)
    if token is None:
        first: protocol.ClientMessage | None
        try:
            first_message = await asyncio.wait_for(socket.receive_text(), AUTH_TIMEOUT)
            first = protocol.client_decoder.decode(first_message)
        except (TimeoutError, msgspec.ValidationError, msgspec.DecodeError):
            first = None
        except WebSocketDisconnect:
            return
        if not isinstance(first, protocol.Auth):
            await socket.close(protocol.UNAUTHORIZED, 'authenticate within 5 s: header or {"type": "auth"}')
            return
        token = first.token
    generation = key_cache.generation
    try:
        principal = await key_cache.principal(pool, token)
    except UNREACHABLE:
        await socket.close(TRY_AGAIN_LATER, _CLOSE_REASONS[TRY_AGAIN_LATER])
        return
    if principal is None or not principal.reads_shipments:
        await socket.close(protocol.UNAUTHORIZED, "unknown, revoked or non-reading API key")
        return
    # a key from outside the accounts (support, admin) has each subscription audited
    who = None if principal.role == "customer" else audit.access(socket, principal)
    subscriber = hub.connect(principal, keys.secret_hash(token))
    writer = asyncio.create_task(_write(socket, subscriber, hub.trace))
    try:
        if key_cache.generation != generation and not await keys.is_active(pool, token):
            # revoked while we were checking it: its NOTIFY found no socket to close
            subscriber.close(protocol.REVOKED)
        while subscriber.close_code is None:
            text = await socket.receive_text()
            await _handle(hub, subscriber, text, pool, who)
    except WebSocketDisconnect:
        pass
    except UNREACHABLE:  # a replay, or the key's check, needs the database
        subscriber.close(TRY_AGAIN_LATER)
    finally:
        hub.disconnect(subscriber)
        if subscriber.close_code is None:
            writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def _write(socket: WebSocket[Any, Any, State], subscriber: Subscriber, trace: Trace | None) -> None:
    """Drain the connection's outbox (pings come through it too, from the hub's
    timer); close when told to. A plain wait: no timer per message."""
    outbox = subscriber.outbox
    try:
        while True:
            await subscriber.ready.wait()
            subscriber.ready.clear()
            while outbox and subscriber.close_code is None:
                text = outbox.popleft()[1]
                await socket.send_text(text)
                if trace is not None:
                    trace.sent(text)
            if subscriber.drained is not None:
                subscriber.drained.set()
            if subscriber.close_code is not None:
                await socket.close(subscriber.close_code, _CLOSE_REASONS.get(subscriber.close_code))
                return
    finally:
        # gone, whatever the way (a disconnect, a failed send): nothing waits on it
        subscriber.close(1000)


_CLOSE_REASONS = {
    protocol.TOO_SLOW: "too slow: resume with since",
    protocol.REVOKED: "API key revoked",
    TRY_AGAIN_LATER: "database unavailable: reconnect shortly, with since",
}


def _error(subscriber: Subscriber, detail: str, path: str | None = None) -> None:
    subscriber.send_now(protocol.encode(protocol.Error(detail=detail, path=path)).decode())


async def _handle(hub: Hub, subscriber: Subscriber, text: str, pool: Pool, who: audit.Access | None) -> None:
    try:
        message = protocol.client_decoder.decode(text)
    except msgspec.ValidationError as exc:
        error = field_error(exc)
        _error(subscriber, error.message, error.path)
        return
    except msgspec.DecodeError as exc:
        _error(subscriber, f"malformed JSON: {exc}")
        return
    principal = subscriber.principal
    match message:
        case protocol.Subscribe(shipments=shipments, since=since, account_id=account_id):
            if shipments == "all":
                try:
                    target = _account_for_all(principal, account_id)
                except ValueError as exc:
                    _error(subscriber, str(exc), "$.account_id")
                    return
                if who is not None:  # recorded before anything is sent; unrecorded, the socket closes
                    await audit.record(pool, who, account_id=target, query=text[: audit.MAX_QUERY])
                await hub.subscribe(
                    subscriber,
                    accounts=[target] if target else [],
                    everything=target is None,
                    since=since,
                )
            else:
                if who is not None:
                    await audit.record_shipments(pool, who, shipments, query=text[: audit.MAX_QUERY])
                try:
                    await hub.subscribe(subscriber, shipments=shipments, since=since)
                except TooManySubscriptions as exc:
                    _error(subscriber, str(exc), "$.shipments")
                    return
            # resuming from here misses nothing: what came before it was asked
            # not to be sent (before `since`), predates this subscription, or was sent
            resume_from = max(subscriber.high_water, since if since is not None else hub.position)
            subscriber.send_now(
                protocol.encode(
                    protocol.Subscribed(shipments=shipments, account_id=account_id, seq=resume_from)
                ).decode()
            )
        case protocol.Unsubscribe(shipments=shipments):
            if shipments == "all":
                hub.unsubscribe(subscriber, accounts=set(subscriber.accounts), everything=True)
            else:
                hub.unsubscribe(subscriber, shipments=shipments)
            subscriber.send_now(protocol.encode(protocol.Unsubscribed(shipments=shipments)).decode())
        case protocol.Auth():
            _error(subscriber, "already authenticated")


def _account_for_all(principal: Principal, account_id: str | None) -> str | None:
    """The account whose "all" is meant; None means every account (support, admin)."""
    if principal.role == "customer":
        if account_id is not None and account_id != principal.account_id:
            raise ValueError("a customer key subscribes to its own account only")
        return principal.account_id
    return account_id
