"""The use cases: load, let the domain decide, save the state and its changes in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import asyncpg
import msgspec

from api import wire
from api.changes import log as change_log
from api.shell import database, keys
from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.errors import FieldError, Problem, invalid, not_found
from api.shell.ids import new_id
from api.shipments import store
from domain.shipment import (
    CreateShipment,
    LateDelivery,
    RecordCarrierEvent,
    RecordEvent,
    RevisePromise,
    Shipment,
    ShipmentClosed,
    TrackingEvent,
)

_encode = msgspec.json.Encoder().encode


# -- shipments -----------------------------------------------------------------


async def create_shipment(
    pool: asyncpg.Pool,
    principal: Principal,
    command: CreateShipment,
    idempotency_key: str | None,
    request_body: bytes,
) -> tuple[int, bytes, str | None]:
    """Returns (status, body, shipment id). With an Idempotency-Key, a repeat of
    the same request gets the first answer; the same key with another body is a 422."""
    account_id = _account_for_create(principal, command)
    scope = principal.account_id or principal.key_id
    request_hash = hashlib.sha256(request_body).digest()
    async with database.transaction(pool) as conn:
        if idempotency_key is not None:
            # same key, one at a time: the second waits and then replays the first
            await conn.execute("select pg_advisory_xact_lock(hashtextextended($1, 0))", f"{scope}:{idempotency_key}")
            seen = await conn.fetchrow(
                "select request_hash, status, body from idempotency_keys where scope = $1 and key = $2",
                scope,
                idempotency_key,
            )
            if seen is not None:
                if seen["request_hash"] != request_hash:
                    raise Problem(
                        422,
                        "idempotency-key-reused",
                        "Idempotency-Key reused",
                        "this Idempotency-Key was used with a different request body; use a new key",
                    )
                body = seen["body"]
                return seen["status"], body, msgspec.json.decode(body)["id"]
        if not await keys.account_exists(conn, account_id):
            raise invalid([FieldError("$.account_id", "no such account")])
        now = utcnow()
        shipment = Shipment(
            id=new_id("shp"),
            account_id=account_id,
            carrier=command.carrier,
            tracking_number=command.tracking_number,
            promised_by=command.promised_by,
            promised_from=command.promised_from,
            reference=command.reference,
            service_level=command.service_level,
            origin=command.origin,
            destination=command.destination,
            recipient=command.recipient,
            metadata=command.metadata,
            created_at=now,
            updated_at=now,
        )
        if not await store.insert(conn, shipment):
            raise Problem(
                409,
                "tracking-number-taken",
                "Shipment exists",
                f"a shipment with carrier {command.carrier!r} and tracking number "
                f"{command.tracking_number!r} already exists",
            )
        body = _encode(wire.shipment_out(shipment, now, with_recipient=True))
        if idempotency_key is not None:
            await conn.execute(
                "insert into idempotency_keys (scope, key, request_hash, status, body) values ($1, $2, $3, 201, $4)",
                scope,
                idempotency_key,
                request_hash,
                body,
            )
    return 201, body, shipment.id


def _account_for_create(principal: Principal, command: CreateShipment) -> str:
    if principal.role == "customer":
        if command.account_id is not None and command.account_id != principal.account_id:
            raise invalid([FieldError("$.account_id", "a customer key creates shipments in its own account only")])
        assert principal.account_id is not None
        return principal.account_id
    if principal.role == "admin":
        if command.account_id is None:
            raise invalid([FieldError("$.account_id", "an admin key must name the account")])
        return command.account_id
    raise not_found("endpoint")


def may_write_events(principal: Principal, shipment: Shipment) -> bool:
    if principal.role == "admin":
        return True
    if principal.role == "customer":
        return shipment.account_id == principal.account_id
    if principal.role == "carrier":
        return principal.carrier is None or principal.carrier == shipment.carrier
    return False


# -- events --------------------------------------------------------------------


class ItemResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int
    outcome: str
    shipment_id: str | None = None
    event_id: str | None = None
    errors: list[FieldError] = []


class BatchResult(msgspec.Struct, kw_only=True):
    results: list[ItemResult]
    accepted: int
    duplicate: int
    rejected: int


async def _apply(
    conn: asyncpg.Connection,
    by_id: dict[str, Shipment],
    items: Sequence[tuple[int, str, TrackingEvent]],
    results: dict[int, ItemResult],
) -> None:
    """Fold new events into their (locked) shipments and save everything in the
    caller's transaction. Duplicates (a key already stored or earlier in the
    same batch) are answered as such and stored once."""
    now = utcnow()
    late_before: dict[str, LateDelivery | None] = {sid: s.late_delivery for sid, s in by_id.items()}
    seen = await store.known_event_keys(conn, [(sid, e.key) for _, sid, e in items])
    new_events: list[tuple[str, TrackingEvent]] = []
    touched: dict[str, Shipment] = {}
    appended: list[change_log.NewChange] = []
    for index, shipment_id, event in items:
        shipment = by_id[shipment_id]
        if (shipment_id, event.key) in seen:
            results[index] = ItemResult(
                index=index, outcome="duplicate", shipment_id=shipment_id, event_id=event.event_id
            )
            continue
        seen.add((shipment_id, event.key))
        shipment.record(event, now)
        appended.extend(change_log.drain_changes(shipment, now))
        new_events.append((shipment_id, event))
        touched[shipment_id] = shipment
        results[index] = ItemResult(index=index, outcome="accepted", shipment_id=shipment_id, event_id=event.event_id)
    await store.insert_events(conn, new_events, now)
    await store.save(conn, list(touched.values()), late_before)
    await change_log.append(conn, appended)


def _summary(results: dict[int, ItemResult], count: int) -> BatchResult:
    ordered = [results[i] for i in range(count)]
    tally = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in ordered:
        tally[r.outcome] += 1
    return BatchResult(results=ordered, **tally)


async def record_events(
    pool: asyncpg.Pool, principal: Principal, shipment_id: str, commands: Sequence[RecordEvent]
) -> tuple[BatchResult, Shipment]:
    """Events for one shipment; the caller has validated every one of them."""
    async with database.transaction(pool) as conn:
        locked = await store.lock_by_ids(conn, [shipment_id])
        if not locked or not may_write_events(principal, locked[0]):
            raise not_found()
        shipment = locked[0]
        results: dict[int, ItemResult] = {}
        items = [(i, shipment_id, TrackingEvent.from_command(c)) for i, c in enumerate(commands)]
        await _apply(conn, {shipment_id: shipment}, items, results)
    return _summary(results, len(commands)), shipment


async def record_carrier_events(
    pool: asyncpg.Pool,
    principal: Principal,
    items: Sequence[RecordCarrierEvent | list[FieldError]],
) -> BatchResult:
    """A carrier batch: each item is a command or the errors that made it invalid.
    A rejected item does not stop the others."""
    results: dict[int, ItemResult] = {}
    valid: list[tuple[int, RecordCarrierEvent]] = []
    for index, item in enumerate(items):
        if isinstance(item, list):
            results[index] = ItemResult(index=index, outcome="rejected", errors=item)
        else:
            valid.append((index, item))
    async with database.transaction(pool) as conn:
        addresses = {(c.carrier, c.tracking_number) for _, c in valid}
        locked = await store.lock_by_tracking(conn, sorted(addresses))
        by_address = {(s.carrier, s.tracking_number): s for s in locked if may_write_events(principal, s)}
        applicable: list[tuple[int, str, TrackingEvent]] = []
        for index, command in valid:
            shipment = by_address.get((command.carrier, command.tracking_number))
            if shipment is None:
                results[index] = ItemResult(
                    index=index,
                    outcome="rejected",
                    errors=[
                        FieldError(
                            f"$[{index}].tracking_number",
                            "no shipment with this carrier and tracking number",
                        )
                    ],
                )
                continue
            applicable.append((index, shipment.id, TrackingEvent.from_command(command)))
        by_id = {s.id: s for s in by_address.values()}
        await _apply(conn, by_id, applicable, results)
    return _summary(results, len(items))


# -- promises ------------------------------------------------------------------


async def revise_promise(
    pool: asyncpg.Pool, principal: Principal, shipment_id: str, command: RevisePromise
) -> Shipment:
    if principal.role not in ("customer", "admin"):
        raise not_found()
    async with database.transaction(pool) as conn:
        locked = await store.lock_by_ids(conn, [shipment_id])
        if not locked or (principal.role == "customer" and locked[0].account_id != principal.account_id):
            raise not_found()
        shipment = locked[0]
        late_before = {shipment.id: shipment.late_delivery}
        now = utcnow()
        try:
            revision = shipment.revise_promise(command.promised_by, command.promised_from, command.reason, now)
        except ShipmentClosed as exc:
            raise Problem(409, "shipment-closed", "Shipment closed", str(exc)) from None
        await conn.execute(
            store.INSERT_REVISION,
            shipment.id,
            revision.promised_by,
            revision.promised_from,
            revision.previous_promised_by,
            revision.previous_promised_from,
            revision.reason,
            revision.revised_at,
            principal.key_id,
        )
        appended = change_log.drain_changes(shipment, now)
        await store.save(conn, [shipment], late_before)
        await change_log.append(conn, appended)
    return shipment
