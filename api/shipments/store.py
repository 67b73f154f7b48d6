"""Shipments, their events and lateness records in PostgreSQL: named SQL and one mapper per row type."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import asyncpg
import msgspec

from api.shell.database import Connection, Executor
from api.shell.ids import new_id
from domain.shipment import LateDelivery, Place, Progress, PromiseRevision, Recipient, Shipment, TrackingEvent
from domain.status import TERMINAL, Reason, Status

SELECT_SHIPMENT = """
select s.*,
       l.promised_by as late_promised_by, l.detected_at as late_detected_at,
       l.detected_by as late_detected_by, l.delivered_at as late_delivered_at,
       l.status_at_detection as late_status_at_detection,
       l.location_at_detection as late_location_at_detection, l.closed_at as late_closed_at
from shipments s
left join late_deliveries l on s.late and l.shipment_id = s.id
"""

GET = SELECT_SHIPMENT + "where s.id = $1"
GET_IN_ACCOUNT = SELECT_SHIPMENT + "where s.id = $1 and s.account_id = $2"
# Lock first, read after, in two statements: under READ COMMITTED a statement
# that waited for a row lock sees the row's new version but not rows the other
# transaction wrote elsewhere (its lateness record); the read that follows the
# lock takes a fresh snapshot and sees both.
LOCK_IDS = "select id from shipments where id = any($1::text[]) order by id for update"
# every shipment with one of these carriers + tracking numbers (across accounts),
# within the account or carrier a key is limited to (null: no limit)
LOCK_TRACKING = """
select id from shipments
where (carrier, tracking_number) in (select * from unnest($1::text[], $2::text[]))
  and ($3::text is null or account_id = $3) and ($4::text is null or carrier = $4)
order by id for update
"""
LOCK_NUMBERS = """
select id from shipments
where tracking_number = any($1::text[])
  and ($2::text is null or account_id = $2) and ($3::text is null or carrier = $3)
order by id for update
"""
GET_MANY = SELECT_SHIPMENT + "where s.id = any($1::text[])"

INSERT = """
insert into shipments (id, account_id, carrier, tracking_number, reference, service_level,
                       promised_by, promised_from, origin, destination, recipient, metadata,
                       created_at, updated_at, recipient_phone_e164)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)
on conflict (account_id, carrier, tracking_number) do nothing
"""

# The columns save() writes back, in _update_args' order after the id: the
# domain decides each shipment's new state, one statement writes a batch of them.
UPDATED_COLUMNS = (
    ("promised_by", "timestamptz"),
    ("promised_from", "timestamptz"),
    ("status", "text"),
    ("status_at", "timestamptz"),
    ("status_key", "text"),
    ("delivered_at", "timestamptz"),
    ("delivered_key", "text"),
    ("estimated_delivery", "timestamptz"),
    ("estimate_at", "timestamptz"),
    ("estimate_key", "text"),
    ("first_estimated_delivery", "timestamptz"),
    ("first_estimate_at", "timestamptz"),
    ("first_estimate_key", "text"),
    ("location", "jsonb"),
    ("location_at", "timestamptz"),
    ("location_key", "text"),
    ("late", "boolean"),
    ("updated_at", "timestamptz"),
    ("version", "integer"),
    ("reason", "text"),
    ("reason_at", "timestamptz"),
    ("reason_key", "text"),
    ("last_event_at", "timestamptz"),
)


def _unnest(columns: Sequence[tuple[str, str]], first: int = 1) -> str:
    """`unnest($1::t1[], $2::t2[], ...) as u(c1, c2, ...)`: a batch's rows as one relation."""
    arrays = ", ".join(f"${first + i}::{kind}[]" for i, (_, kind) in enumerate(columns))
    return f"unnest({arrays}) as u({', '.join(name for name, _ in columns)})"


# one statement a batch: the rows are locked already, each id is there once
UPDATE = f"""
update shipments s set {", ".join(f"{name} = u.{name}" for name, _ in UPDATED_COLUMNS)}
from {_unnest((("id", "text"), *UPDATED_COLUMNS))}
where s.id = u.id
"""

KNOWN_EVENT_KEYS = """
select shipment_id, key from events
where (shipment_id, key) in (select * from unnest($1::text[], $2::text[]))
"""

INSERT_EVENT = """
insert into events (shipment_id, key, event_id, status, occurred_at, location,
                    description, reason, estimated_delivery, received_at,
                    carrier_code, carrier_status, time_rule, inbound_payload_id)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""
EVENT_COLUMNS = (
    ("shipment_id", "text"),
    ("key", "text"),
    ("event_id", "text"),
    ("status", "text"),
    ("occurred_at", "timestamptz"),
    ("location", "jsonb"),
    ("description", "text"),
    ("reason", "text"),
    ("estimated_delivery", "timestamptz"),
    ("received_at", "timestamptz"),
    ("carrier_code", "text"),
    ("carrier_status", "text"),
    ("time_rule", "text"),
    ("inbound_payload_id", "text"),
)
# a batch's new events in one statement (INSERT_EVENT is the same row by row)
INSERT_EVENTS = f"""
insert into events ({", ".join(name for name, _ in EVENT_COLUMNS)})
select * from {_unnest(EVENT_COLUMNS)}
"""

TIMELINE = """
select * from events where shipment_id = $1 order by occurred_at, key
"""

LATE_COLUMNS = (
    ("id", "text"),
    ("shipment_id", "text"),
    ("account_id", "text"),
    ("carrier", "text"),
    ("promised_by", "timestamptz"),
    ("detected_at", "timestamptz"),
    ("detected_by", "text"),
    ("status_at_detection", "text"),
    ("location_at_detection", "jsonb"),
    ("delivered_at", "timestamptz"),
    ("closed_at", "timestamptz"),
)
UPSERT_LATE = f"""
insert into late_deliveries ({", ".join(name for name, _ in LATE_COLUMNS)})
select * from {_unnest(LATE_COLUMNS)}
on conflict (shipment_id) do update
    set delivered_at = excluded.delivered_at, closed_at = excluded.closed_at
"""

# the carrier's data shows the promise was kept after all
DELETE_LATE = "delete from late_deliveries where shipment_id = any($1::text[])"

INSERT_REVISION = """
insert into promise_revisions (shipment_id, promised_by, promised_from, previous_promised_by,
                               previous_promised_from, reason, revised_at, revised_by)
values ($1, $2, $3, $4, $5, $6, $7, $8)
"""


@overload
def _instant(value: datetime) -> datetime: ...
@overload
def _instant(value: None) -> None: ...
def _instant(value: datetime | None) -> datetime | None:
    """An instant read back, always with its offset: asyncpg gives the extremes
    (year 1, infinity) as naive datetimes, and every timestamptz is UTC. Migration
    0006 keeps such values out; rows written before it may hold them."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _place(value: dict[str, Any] | None) -> Place | None:
    return None if value is None else msgspec.convert(value, Place)


REVISIONS = "select * from promise_revisions where shipment_id = $1 order by id"


def revision_from_row(row: asyncpg.Record) -> PromiseRevision:
    return PromiseRevision(
        promised_by=_instant(row["promised_by"]),
        promised_from=_instant(row["promised_from"]),
        previous_promised_by=_instant(row["previous_promised_by"]),
        previous_promised_from=_instant(row["previous_promised_from"]),
        reason=row["reason"],
        revised_at=_instant(row["revised_at"]),
    )


def _status(value: str | None) -> Status | None:
    return None if value is None else Status(value)


def shipment_from_row(row: asyncpg.Record) -> Shipment:
    late_delivery = None
    if row["late_detected_at"] is not None:
        late_delivery = LateDelivery(
            promised_by=_instant(row["late_promised_by"]),
            detected_at=_instant(row["late_detected_at"]),
            detected_by=row["late_detected_by"],
            status_at_detection=_status(row["late_status_at_detection"]),
            location_at_detection=_place(row["late_location_at_detection"]),
            delivered_at=_instant(row["late_delivered_at"]),
            closed_at=_instant(row["late_closed_at"]),
        )
    return Shipment(
        id=row["id"],
        account_id=row["account_id"],
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        reference=row["reference"],
        service_level=row["service_level"],
        promised_by=_instant(row["promised_by"]),
        promised_from=_instant(row["promised_from"]),
        origin=_place(row["origin"]),
        destination=_place(row["destination"]),
        recipient=None if row["recipient"] is None else msgspec.convert(row["recipient"], Recipient),
        metadata=row["metadata"],
        progress=Progress(
            status=Status(row["status"]),
            status_at=_instant(row["status_at"]),
            status_key=row["status_key"],
            delivered_at=_instant(row["delivered_at"]),
            delivered_key=row["delivered_key"],
            estimated_delivery=_instant(row["estimated_delivery"]),
            estimate_at=_instant(row["estimate_at"]),
            estimate_key=row["estimate_key"],
            first_estimated_delivery=_instant(row["first_estimated_delivery"]),
            first_estimate_at=_instant(row["first_estimate_at"]),
            first_estimate_key=row["first_estimate_key"],
            location=_place(row["location"]),
            location_at=_instant(row["location_at"]),
            location_key=row["location_key"],
            reason=None if row["reason"] is None else Reason(row["reason"]),
            reason_at=_instant(row["reason_at"]),
            reason_key=row["reason_key"],
            last_event_at=_instant(row["last_event_at"]),
        ),
        late_delivery=late_delivery,
        created_at=_instant(row["created_at"]),
        updated_at=_instant(row["updated_at"]),
        version=row["version"],
    )


def event_from_row(row: asyncpg.Record) -> tuple[TrackingEvent, datetime]:
    event = TrackingEvent(
        key=row["key"],
        status=Status(row["status"]),
        occurred_at=_instant(row["occurred_at"]),
        event_id=row["event_id"],
        location=_place(row["location"]),
        description=row["description"],
        reason=None if row["reason"] is None else Reason(row["reason"]),
        estimated_delivery=_instant(row["estimated_delivery"]),
        carrier_code=row["carrier_code"],
        carrier_status=row["carrier_status"],
        time_rule=row["time_rule"],
        inbound_payload_id=row["inbound_payload_id"],
    )
    return event, _instant(row["received_at"])


def _json(value: msgspec.Struct | None) -> dict[str, Any] | None:
    return None if value is None else msgspec.to_builtins(value)


async def insert(conn: Connection, shipment: Shipment, recipient_phone_e164: str | None) -> bool:
    """Insert a new shipment (with its recipient's phone in E.164, for the support
    lookup); False when its carrier and tracking number are taken."""
    status = await conn.execute(
        INSERT,
        shipment.id,
        shipment.account_id,
        shipment.carrier,
        shipment.tracking_number,
        shipment.reference,
        shipment.service_level,
        shipment.promised_by,
        shipment.promised_from,
        _json(shipment.origin),
        _json(shipment.destination),
        _json(shipment.recipient),
        shipment.metadata,
        shipment.created_at,
        recipient_phone_e164,
    )
    return status == "INSERT 0 1"


async def get(conn: Executor, shipment_id: str, account_id: str | None) -> Shipment | None:
    """One shipment; limited to `account_id` when given (None means any account)."""
    if account_id is None:
        row = await conn.fetchrow(GET, shipment_id)
    else:
        row = await conn.fetchrow(GET_IN_ACCOUNT, shipment_id, account_id)
    return None if row is None else shipment_from_row(row)


# What a shipment's ETag is made of and nothing more: one primary-key read with
# no join to build and no jsonb to decode, for a conditional GET that is most
# often answered 304. Read from the database every time (never from a cache),
# so a shipment changed by another process a moment ago is never answered 304.
ETAG_FIELDS = """
select s.version, s.status, s.promised_by, s.delivered_at, s.estimated_delivery,
       coalesce(s.last_event_at, s.created_at) as last_movement,
       s.late and exists (select 1 from late_deliveries l where l.shipment_id = s.id) as has_late_record
from shipments s
where s.id = $1 and s.account_id = $2
"""


class EtagFields(msgspec.Struct, frozen=True):
    version: int
    status: Status
    promised_by: datetime
    delivered_at: datetime | None
    estimated_delivery: datetime | None
    last_movement: datetime
    has_late_record: bool


async def etag_fields(conn: Executor, shipment_id: str, account_id: str) -> EtagFields | None:
    """What the ETag of a shipment in `account_id` is made of, or None when there is none."""
    row = await conn.fetchrow(ETAG_FIELDS, shipment_id, account_id)
    if row is None:
        return None
    return EtagFields(
        row["version"],
        Status(row["status"]),
        _instant(row["promised_by"]),
        _instant(row["delivered_at"]),
        _instant(row["estimated_delivery"]),
        _instant(row["last_movement"]),
        bool(row["has_late_record"]),
    )


async def lock_by_ids(conn: Connection, ids: Sequence[str]) -> list[Shipment]:
    locked = [r["id"] for r in await conn.fetch(LOCK_IDS, list(ids))]
    return await _read_locked(conn, locked)


async def lock_by_tracking(
    conn: Connection,
    addresses: Iterable[tuple[str, str]],
    *,
    account_id: str | None = None,
    carrier: str | None = None,
) -> list[Shipment]:
    """Lock every shipment with one of these (carrier, tracking number) addresses,
    in id order (so two batches never wait on each other in a cycle), limited to
    `account_id` and `carrier` when given."""
    addresses = list(addresses)
    carriers, numbers = zip(*addresses, strict=True) if addresses else ((), ())
    rows = await conn.fetch(LOCK_TRACKING, list(carriers), list(numbers), account_id, carrier)
    return await _read_locked(conn, [r["id"] for r in rows])


async def lock_by_numbers(
    conn: Connection, numbers: Iterable[str], *, account_id: str | None = None, carrier: str | None = None
) -> list[Shipment]:
    """Lock every shipment with one of these tracking numbers, whatever its
    carrier (a carrier's payload or an aggregator's names the number, and its
    carrier in its own spelling), in id order, limited as lock_by_tracking."""
    rows = await conn.fetch(LOCK_NUMBERS, sorted(set(numbers)), account_id, carrier)
    return await _read_locked(conn, [r["id"] for r in rows])


async def _read_locked(conn: Connection, ids: list[str]) -> list[Shipment]:
    if not ids:
        return []
    return [shipment_from_row(r) for r in await conn.fetch(GET_MANY, ids)]


async def known_event_keys(conn: Connection, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    if not pairs:
        return set()
    ids, keys = zip(*pairs, strict=False)
    rows = await conn.fetch(KNOWN_EVENT_KEYS, list(ids), list(keys))
    return {(r["shipment_id"], r["key"]) for r in rows}


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    """Rows as one list a column, the arguments of an unnest()."""
    return [list(column) for column in zip(*rows, strict=True)]


async def insert_events(conn: Connection, events: Sequence[tuple[str, TrackingEvent]], received_at: datetime) -> None:
    if not events:
        return
    rows = [
        (
            shipment_id,
            e.key,
            e.event_id,
            e.status.value,
            e.occurred_at,
            _json(e.location),
            e.description,
            None if e.reason is None else e.reason.value,
            e.estimated_delivery,
            received_at,
            e.carrier_code,
            e.carrier_status,
            e.time_rule,
            e.inbound_payload_id,
        )
        for shipment_id, e in events
    ]
    await conn.execute(INSERT_EVENTS, *_columns(rows))


async def save(
    conn: Connection,
    shipments: Sequence[Shipment],
    late_before: dict[str, LateDelivery | None],
) -> None:
    """Write back what the domain changed: the fold, the promise, and the
    lateness record where it differs from `late_before` (as loaded)."""
    if not shipments:
        return
    await conn.execute(UPDATE, *_columns([_update_args(s) for s in shipments]))
    upserts: list[tuple[object, ...]] = []
    deletes: list[str] = []
    for s in shipments:
        record = s.late_delivery
        if record == late_before.get(s.id):
            continue
        if record is None:
            deletes.append(s.id)
        else:
            upserts.append(
                (
                    new_id("late"),
                    s.id,
                    s.account_id,
                    s.carrier,
                    record.promised_by,
                    record.detected_at,
                    record.detected_by,
                    None if record.status_at_detection is None else record.status_at_detection.value,
                    _json(record.location_at_detection),
                    record.delivered_at,
                    record.closed_at,
                )
            )
    if upserts:
        await conn.execute(UPSERT_LATE, *_columns(upserts))
    if deletes:
        await conn.execute(DELETE_LATE, deletes)


def _update_args(s: Shipment) -> tuple[object, ...]:
    p = s.progress
    return (
        s.id,
        s.promised_by,
        s.promised_from,
        p.status.value,
        p.status_at,
        p.status_key,
        p.delivered_at,
        p.delivered_key,
        p.estimated_delivery,
        p.estimate_at,
        p.estimate_key,
        p.first_estimated_delivery,
        p.first_estimate_at,
        p.first_estimate_key,
        _json(p.location),
        p.location_at,
        p.location_key,
        s.late_delivery is not None,
        s.updated_at,
        s.version,
        None if p.reason is None else p.reason.value,
        p.reason_at,
        p.reason_key,
        p.last_event_at,
    )


async def timeline(conn: Executor, shipment_id: str) -> list[tuple[TrackingEvent, datetime]]:
    return [event_from_row(r) for r in await conn.fetch(TIMELINE, shipment_id)]


async def revisions(conn: Executor, shipment_id: str) -> list[PromiseRevision]:
    return [revision_from_row(r) for r in await conn.fetch(REVISIONS, shipment_id)]


class ShipmentFilter(msgspec.Struct, kw_only=True, frozen=True):
    """What a list of shipments is narrowed to; None: not narrowed by it."""

    account_id: str | None = None
    status: Status | None = None
    carrier: str | None = None
    reference: str | None = None
    tracking_number: str | None = None
    updated_after: datetime | None = None
    late: bool | None = None
    at_risk: bool | None = None
    stale: bool | None = None
    before_id: str | None = None  # keyset: the last id of the page before


_TERMINAL = [status.value for status in TERMINAL]


async def page(
    conn: Executor, wanted: ShipmentFilter, now: datetime, stale_after: timedelta, limit: int
) -> list[Shipment]:
    """Shipments newest first (by id), at most `limit`, as narrowed."""
    where: list[str] = []
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    for column, value in (
        ("account_id", wanted.account_id),
        ("status", None if wanted.status is None else wanted.status.value),
        ("carrier", wanted.carrier),
        ("reference", wanted.reference),
        ("tracking_number", wanted.tracking_number),
    ):
        if value is not None:
            where.append(f"s.{column} = {param(value)}")
    if wanted.updated_after is not None:
        where.append(f"s.updated_at > {param(wanted.updated_after)}")
    # These restate domain.promise.is_late / is_at_risk / is_stale in SQL, with the
    # same `now`; tests/integration check that the two agree.
    if wanted.late is not None:
        t, n = param(_TERMINAL), param(now)
        clause = (
            f"(s.late or (s.delivered_at is not null and s.delivered_at > s.promised_by)"
            f" or (s.delivered_at is null and s.status <> all({t}) and {n} > s.promised_by))"
        )
        where.append(clause if wanted.late else f"not {clause}")
    if wanted.at_risk is not None:
        t, n = param(_TERMINAL), param(now)
        clause = (
            f"(s.status <> all({t}) and s.estimated_delivery is not null"
            f" and {n} <= s.promised_by and s.estimated_delivery > s.promised_by)"
        )
        where.append(clause if wanted.at_risk else f"not {clause}")
    if wanted.stale is not None:
        t, since = param(_TERMINAL), param(now - stale_after)
        clause = f"(s.status <> all({t}) and coalesce(s.last_event_at, s.created_at) < {since})"
        where.append(clause if wanted.stale else f"not {clause}")
    if wanted.before_id is not None:
        where.append(f"s.id < {param(wanted.before_id)}")
    sql = SELECT_SHIPMENT
    if where:
        sql += "where " + " and ".join(where)
    sql += f" order by s.id desc limit {param(limit)}"
    return [shipment_from_row(r) for r in await conn.fetch(sql, *args)]
