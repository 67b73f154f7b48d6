"""Inbound payloads: read by the source's adapter, kept, and recorded through
the same path as every other carrier event (api.shipments.service), in one
transaction with the payload's row, so a refused request writes nothing."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from prometheus_client import Counter

from api.inbound import store
from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError
from api.inbound.sources import SOURCES, Source
from api.shell import database
from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.errors import FieldError, Problem
from api.shell.ids import new_id
from api.shipments import service as shipments
from domain.shipment import Place, RecordEvent, TrackingEvent, event_key, normalize_tracking_number
from domain.status import Reason, Status

log = logging.getLogger("ontime.inbound")

UNMAPPED = Counter(
    "ontime_inbound_unmapped_codes",
    "Inbound events whose code the source's adapter table does not know, by source and code",
    ["source", "code"],
)
PAYLOADS = Counter("ontime_inbound_payloads", "Inbound payloads stored, by source", ["source"])


class InboundItem(msgspec.Struct, kw_only=True):
    """One event the payload became, and what it reached."""

    index: int
    tracking_number: str
    status: Status
    reason: Reason | None
    occurred_at: datetime
    time_rule: str
    carrier_code: str
    carrier_status: str
    # the code is not in the adapter's table: placed by the source's category or the nearest status
    unmapped: bool
    # accepted: new to at least one shipment; duplicate: every shipment had it; unmatched: no shipment has the number
    outcome: Literal["accepted", "duplicate", "unmatched"]
    shipments_reached: int


class InboundAnswer(msgspec.Struct, kw_only=True):
    id: str
    source: str
    received_at: datetime
    events: int
    accepted: int
    duplicate: int
    unmatched: int
    items: list[InboundItem]
    # the parts of the payload that could not be read, each on its own
    errors: list[ItemError]


def source_or_404(name: str) -> Source:
    source = SOURCES.get(name)
    if source is None:
        raise Problem(
            404,
            "not-found",
            "Not found",
            f"no such source {name!r}; sources: {', '.join(sorted(SOURCES))}",
            [FieldError("path.source", "no such source")],
        )
    return source


def read(source_name: str, body: bytes, zone: str) -> Adapted:
    """The adapter's reading, or a 400 naming the body."""
    try:
        context = Context(account_zone=zone)
        return SOURCES[source_name].adapt(body, context)
    except PayloadError as error:
        raise Problem(
            400,
            "malformed-payload",
            "Malformed payload",
            f"the body is not a {source_name} payload: {error}",
            [FieldError("body", str(error))],
        ) from None
    except RecursionError:
        raise Problem(
            400, "malformed-payload", "Malformed payload", "the body nests too deeply", [FieldError("body", "too deep")]
        ) from None


def tracking_event(event: MappedEvent, payload_id: str) -> tuple[str, TrackingEvent] | None:
    """Our event from the adapter's, keyed exactly as any event is (the
    carrier's event id, else a digest of its content); None when the number or
    event id cannot be a tracking number or an event id of ours."""
    number = normalize_tracking_number(event.tracking_number)
    if not number or len(number) > 64:
        return None
    estimated = None
    if isinstance(event.estimated_delivery, date):
        # a promised day: its end, UTC, as every estimated delivery is stored
        estimated = datetime.combine(event.estimated_delivery, time(23, 59, 59), tzinfo=ZoneInfo("UTC"))
    place = Place(city=event.location[:200]) if event.location else None
    command = RecordEvent(
        status=event.status,
        occurred_at=event.occurred_at,
        event_id=event.carrier_event_id[:200] if event.carrier_event_id else None,
        location=place,
        description=(event.description or event.carrier_status or None),
        reason=event.reason,
        estimated_delivery=estimated,
    )
    base = TrackingEvent.from_command(command)
    return number, msgspec.structs.replace(
        base,
        key=event_key(command),
        carrier_code=event.carrier_code[:200],
        carrier_status=event.carrier_status[:2000],
        time_rule=str(event.time_rule),
        inbound_payload_id=payload_id,
    )


def count_unmapped(source: str, events: list[MappedEvent]) -> None:
    for event in events:
        if event.unmapped:
            UNMAPPED.labels(source, event.carrier_code[:64]).inc()


async def record(
    conn: database.Connection, principal: Principal, source: str, payload_id: str, adapted: Adapted
) -> tuple[list[InboundItem], list[ItemError], int]:
    """Record the adapter's events in the caller's transaction; per item, what they reached."""
    errors = list(adapted.errors)
    usable: list[tuple[int, MappedEvent, str, TrackingEvent]] = []
    for index, event in enumerate(adapted.events):
        made = tracking_event(event, payload_id)
        if made is None:
            errors.append(ItemError(where=f"events[{index}]", message="not a tracking number ontime can hold"))
            continue
        usable.append((index, event, made[0], made[1]))
    results = await shipments.record_tracked_events(conn, principal, [(n, e) for _, _, n, e in usable])
    items: list[InboundItem] = []
    matched = 0
    for (index, event, number, _), result in zip(usable, results, strict=True):
        outcome: Literal["accepted", "duplicate", "unmatched"] = "unmatched" if result is None else "accepted"
        if result is not None:
            matched += 1
            outcome = "accepted" if result.outcome == "accepted" else "duplicate"
        items.append(
            InboundItem(
                index=index,
                tracking_number=number,
                status=event.status,
                reason=event.reason,
                occurred_at=event.occurred_at,
                time_rule=str(event.time_rule),
                carrier_code=event.carrier_code,
                carrier_status=event.carrier_status,
                unmapped=event.unmapped,
                outcome=outcome,
                shipments_reached=0 if result is None else result.shipments_reached,
            )
        )
    await conn.execute(
        store.UPDATE_PAYLOAD,
        payload_id,
        len(adapted.events),
        matched,
        len(items) - matched,
        store.errors_json(errors),
    )
    return items, errors, matched


def answer(
    payload_id: str, source: str, received_at: datetime, items: list[InboundItem], errors: list[ItemError], events: int
) -> InboundAnswer:
    tally = {"accepted": 0, "duplicate": 0, "unmatched": 0}
    for item in items:
        tally[item.outcome] += 1
    return InboundAnswer(
        id=payload_id, source=source, received_at=received_at, events=events, items=items, errors=errors, **tally
    )


def safe_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return zone


async def ingest(
    pool: database.Pool,
    principal: Principal,
    source: str,
    body: bytes,
    content_type: str | None,
    integration_id: str | None = None,
) -> InboundAnswer:
    zone = safe_zone(await store.account_zone(pool, principal.account_id))
    adapted = read(source, body, zone)
    payload_id = new_id("inb")
    now = utcnow()
    async with database.transaction(pool) as conn:
        await store.insert_payload(
            conn,
            payload_id,
            principal.account_id,
            source,
            integration_id,
            None if integration_id else principal.key_id,
            now,
            content_type,
            body,
        )
        items, errors, _ = await record(conn, principal, source, payload_id, adapted)
    PAYLOADS.labels(source).inc()
    count_unmapped(source, adapted.events)
    return answer(payload_id, source, now, items, errors, len(adapted.events))


def owner_principal(caller: Principal, account_id: str | None) -> Principal:
    """Who a replay writes as: the payload's account when it has one (its events
    reach that account's shipments, as they did), else the caller (an admin)."""
    if account_id is None:
        return caller
    return Principal(key_id=caller.key_id, role="customer", account_id=account_id, carrier=None)


async def replay(pool: database.Pool, caller: Principal, payload_id: str) -> InboundAnswer:
    row = await pool.fetchrow(store.GET_PAYLOAD, payload_id)
    if row is None or (caller.role == "customer" and row["account_id"] != caller.account_id):
        raise Problem(404, "not-found", "Not found", "no such inbound payload")
    source = row["source"]
    zone = safe_zone(await store.account_zone(pool, row["account_id"]))
    adapted = read(source, bytes(row["body"]), zone)
    principal = owner_principal(caller, row["account_id"])
    async with database.transaction(pool) as conn:
        items, errors, _ = await record(conn, principal, source, payload_id, adapted)
    count_unmapped(source, adapted.events)
    return answer(payload_id, source, row["received_at"], items, errors, len(adapted.events))


def dry_run(source: str, body: bytes, zone: str = "UTC") -> Adapted:
    """What `ontime inbound` prints: the adapter's reading, nothing written."""
    return read(source, body, zone)
