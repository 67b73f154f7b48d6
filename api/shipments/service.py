"""The use cases: load, let the domain decide, save the state and its changes in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import msgspec

from api import wire
from api.cases import service as cases
from api.changes import log as change_log
from api.shell import audit, database, keys, phones
from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.errors import FieldError, Problem, invalid, named_not_found, not_found
from api.shell.ids import new_id
from api.shipments import store
from domain.cases import CaseType, Trigger
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
from domain.status import Reason, Status

_encode = msgspec.json.Encoder().encode


# -- shipments -----------------------------------------------------------------


async def create_shipment(
    pool: database.Pool,
    principal: Principal,
    command: CreateShipment,
    idempotency_key: str | None,
    request_body: bytes,
    who: audit.Access,
    links: wire.PublicLinks | None = None,
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
                shipment_id = msgspec.json.decode(body)["id"]
                if audit.crosses(principal, account_id):  # the replay answers the shipment too
                    await audit.record(conn, who, account_id=account_id, shipment_ids=[shipment_id])
                return seen["status"], body, shipment_id
        account = await keys.find_account(conn, account_id)
        if account is None:
            raise named_not_found("$.account_id", "account")
        now = utcnow()
        shipment = Shipment.create(command, shipment_id=new_id("shp"), account_id=account_id, now=now)
        phone = None if shipment.recipient is None else phones.e164(shipment.recipient.phone, account.country)
        if not await store.insert(conn, shipment, phone):
            # unique per account: another account's shipments are never mentioned
            raise Problem(
                409,
                "tracking-number-taken",
                "Shipment exists",
                f"this account already has a shipment with carrier {command.carrier!r} and tracking number "
                f"{command.tracking_number!r}",
            )
        body = _encode(wire.shipment_out(shipment, now, with_recipient=True, links=links))
        created = change_log.drain_changes(shipment, now)
        if idempotency_key is not None:
            await conn.execute(
                "insert into idempotency_keys (scope, key, request_hash, status, body) values ($1, $2, $3, 201, $4)",
                scope,
                idempotency_key,
                request_hash,
                body,
            )
        await change_log.append(conn, created)
        if audit.crosses(principal, account_id):
            await audit.record(conn, who, account_id=account_id, shipment_ids=[shipment.id])
    return 201, body, shipment.id


def _account_for_create(principal: Principal, command: CreateShipment) -> str:
    if principal.role == "customer":
        if command.account_id is not None and command.account_id != principal.account_id:
            # another account's, or none at all: the same answer, so it tells nothing
            raise named_not_found("$.account_id", "account")
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
    """One item's answer. An event addressed by carrier + tracking number reaches
    every shipment with that number the key may write to (in any account, for a
    carrier or admin key); `outcome` is accepted when it was new to at least one
    of them, duplicate when all of them had it already."""

    index: int
    outcome: Literal["accepted", "duplicate", "rejected"]
    # how many shipments the event reached (0 when rejected)
    shipments_reached: int
    # which ones, for a key that may read them; left out for carrier keys
    shipment_ids: list[str] | msgspec.UnsetType = msgspec.UNSET
    event_id: str | None = None
    errors: list[FieldError] = []


class BatchResult(msgspec.Struct, kw_only=True):
    results: list[ItemResult]
    accepted: int
    duplicate: int
    rejected: int


async def _apply(
    conn: database.Connection,
    principal: Principal,
    by_id: dict[str, Shipment],
    items: Sequence[tuple[int, TrackingEvent, Sequence[str]]],
    results: dict[int, ItemResult],
) -> None:
    """Fold each new event into the (locked) shipments it is addressed to and save
    everything in the caller's transaction. Duplicates are per shipment (a key
    already stored for it, or earlier in the same batch): stored once."""
    now = utcnow()
    late_before: dict[str, LateDelivery | None] = {sid: s.late_delivery for sid, s in by_id.items()}
    seen = await store.known_event_keys(conn, [(sid, e.key) for _, e, ids in items for sid in ids])
    new_events: list[tuple[str, TrackingEvent]] = []
    touched: dict[str, Shipment] = {}
    appended: list[change_log.NewChange] = []
    # shipments that received an exception, by the type of case it suggests
    exceptions: dict[CaseType, list[tuple[str, str | None]]] = {}
    for index, event, shipment_ids in items:
        new_to_one = False
        for shipment_id in shipment_ids:
            if (shipment_id, event.key) in seen:
                continue
            seen.add((shipment_id, event.key))
            shipment = by_id[shipment_id]
            shipment.record(event, now)
            appended.extend(change_log.drain_changes(shipment, now))
            if event.status is Status.EXCEPTION:
                exceptions.setdefault(_case_type_for(event.reason), []).append((shipment.account_id, shipment_id))
            new_events.append((shipment_id, event))
            touched[shipment_id] = shipment
            new_to_one = True
        results[index] = ItemResult(
            index=index,
            outcome="accepted" if new_to_one else "duplicate",
            shipments_reached=len(shipment_ids),
            shipment_ids=list(shipment_ids) if principal.reads_shipments else msgspec.UNSET,
            event_id=event.event_id,
        )
    await store.insert_events(conn, new_events, now)
    await store.save(conn, list(touched.values()), late_before)
    for case_type, shipments in exceptions.items():
        # a case opens when the account asks for one, once per shipment
        appended.extend(
            await cases.open_automatic_many(conn, shipments, type=case_type, trigger=Trigger.EXCEPTION, now=now)
        )
    await change_log.append(conn, appended)


# The type of case an exception suggests, from its reason.
EXCEPTION_CASE_TYPES: dict[Reason | None, CaseType] = {
    Reason.DAMAGED: CaseType.DAMAGE,
    Reason.LOST: CaseType.LOST,
    Reason.ADDRESS_ISSUE: CaseType.ADDRESS_ISSUE,
}


def _case_type_for(reason: Reason | None) -> CaseType:
    return EXCEPTION_CASE_TYPES.get(reason, CaseType.DELAY)


def _summary(results: dict[int, ItemResult], count: int) -> BatchResult:
    ordered = [results[i] for i in range(count)]
    tally = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in ordered:
        tally[r.outcome] += 1
    return BatchResult(results=ordered, **tally)


async def record_events(
    pool: database.Pool, principal: Principal, shipment_id: str, commands: Sequence[RecordEvent], who: audit.Access
) -> tuple[BatchResult, Shipment]:
    """Events for one shipment; the caller has validated every one of them."""
    async with database.transaction(pool) as conn:
        locked = await store.lock_by_ids(conn, [shipment_id])
        if not locked or not may_write_events(principal, locked[0]):
            raise not_found()
        shipment = locked[0]
        results: dict[int, ItemResult] = {}
        items = [(i, TrackingEvent.from_command(c), [shipment_id]) for i, c in enumerate(commands)]
        await _apply(conn, principal, {shipment_id: shipment}, items, results)
        if audit.crosses(principal, shipment.account_id):
            await audit.record(conn, who, account_id=shipment.account_id, shipment_ids=[shipment_id])
    return _summary(results, len(commands)), shipment


async def record_carrier_events(
    pool: database.Pool,
    principal: Principal,
    items: Sequence[RecordCarrierEvent | list[FieldError]],
    who: audit.Access,
) -> BatchResult:
    """A carrier batch: each item is a command or the errors that made it invalid.
    A rejected item does not stop the others. Each event reaches every shipment
    with its carrier + tracking number that the key may write to."""
    results: dict[int, ItemResult] = {}
    valid: list[tuple[int, RecordCarrierEvent]] = []
    for index, item in enumerate(items):
        if isinstance(item, list):
            results[index] = ItemResult(index=index, outcome="rejected", shipments_reached=0, errors=item)
        else:
            valid.append((index, item))
    async with database.transaction(pool) as conn:
        addresses = {(c.carrier, c.tracking_number) for _, c in valid}
        # one statement locks them all, in id order: no two batches wait on each other in a cycle
        locked = await store.lock_by_tracking(
            conn,
            sorted(addresses),
            account_id=principal.account_scope,
            carrier=principal.carrier if principal.role == "carrier" else None,
        )
        by_address: dict[tuple[str, str], list[str]] = {}
        by_id: dict[str, Shipment] = {}
        for shipment in sorted(locked, key=lambda s: s.id):
            if may_write_events(principal, shipment):
                by_address.setdefault((shipment.carrier, shipment.tracking_number), []).append(shipment.id)
                by_id[shipment.id] = shipment
        applicable: list[tuple[int, TrackingEvent, Sequence[str]]] = []
        for index, command in valid:
            shipment_ids = by_address.get((command.carrier, command.tracking_number))
            if not shipment_ids:
                results[index] = ItemResult(
                    index=index,
                    outcome="rejected",
                    shipments_reached=0,
                    errors=[
                        FieldError(
                            f"$[{index}].tracking_number",
                            "no shipment with this carrier and tracking number",
                        )
                    ],
                )
                continue
            applicable.append((index, TrackingEvent.from_command(command), shipment_ids))
        await _apply(conn, principal, by_id, applicable, results)
        reached = audit.by_account(
            (s.account_id, s.id) for s in by_id.values() if audit.crosses(principal, s.account_id)
        )
        if reached:
            await audit.record_by_account(conn, who, reached)
    return _summary(results, len(items))


async def record_tracked_events(
    conn: database.Connection, principal: Principal, items: Sequence[tuple[str, TrackingEvent]]
) -> list[ItemResult | None]:
    """Events addressed by tracking number alone (from a carrier payload read
    by an adapter), in the caller's transaction, through the same fold and the
    same duplicate rule as every other event. Each reaches every shipment with
    that number the principal may write to; None for an item no shipment has."""
    locked = await store.lock_by_numbers(
        conn,
        (number for number, _ in items),
        account_id=principal.account_scope,
        carrier=principal.carrier if principal.role == "carrier" else None,
    )
    by_number: dict[str, list[str]] = {}
    by_id: dict[str, Shipment] = {}
    for shipment in locked:
        if may_write_events(principal, shipment):
            by_number.setdefault(shipment.tracking_number, []).append(shipment.id)
            by_id[shipment.id] = shipment
    results: dict[int, ItemResult] = {}
    applicable = [
        (index, event, by_number[number]) for index, (number, event) in enumerate(items) if number in by_number
    ]
    await _apply(conn, principal, by_id, applicable, results)
    return [results.get(index) for index in range(len(items))]


# -- promises ------------------------------------------------------------------


async def revise_promise(
    pool: database.Pool, principal: Principal, shipment_id: str, command: RevisePromise, who: audit.Access
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
        if audit.crosses(principal, shipment.account_id):
            await audit.record(conn, who, account_id=shipment.account_id, shipment_ids=[shipment.id])
    return shipment
