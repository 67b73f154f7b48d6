"""The shipment aggregate: what it knows, and how a tracking event changes it.

`Shipment.record(event)` folds one event into the shipment and appends what
happened (past tense, see domain.events) to `shipment.changes`; it does no I/O.
Every part of the fold is a maximum or a minimum over the events seen, so the
same set of events gives the same shipment whatever order they arrive in.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, overload

import msgspec
from msgspec import Meta

from domain import promise
from domain.errors import InvalidField
from domain.events import (
    Change,
    DeliveredLate,
    EventRecorded,
    PromiseBroken,
    PromiseRevised,
    RiskChanged,
    ShipmentCreated,
)
from domain.status import TERMINAL, Reason, Status, order_key

# -- constrained values, shared by the wire and the domain ---------------------

# The instants a shipping business can mean: from 1970-01-01T00:00:00Z (inclusive)
# to 2200-01-01T00:00:00Z (exclusive). Anything outside is a typo or a probe, and
# PostgreSQL would hand back its extremes (year 1, infinity) as naive datetimes.
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_INSTANTS = datetime(2200, 1, 1, tzinfo=UTC)
INSTANT_RANGE = "between 1970-01-01T00:00:00Z (inclusive) and 2200-01-01T00:00:00Z (exclusive)"

_DAY = r"(0[1-9]|[12][0-9]|3[01])"
_MONTH_DAY = rf"(0[1-9]|1[0-2])-{_DAY}"
# at most microseconds: msgspec rounds finer fractions, which could carry 2199-12-31T23:59:59.9999999Z over
_TIME = r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
_OFFSET = r"[+-]([01][0-9]|2[0-3]):[0-5][0-9]"
# The RFC 3339 form of an instant in range, for the OpenAPI document (the check
# itself is on the instant, in `utc`). On the first and last day an offset can
# carry the instant out of range, so there the pattern admits only the offsets
# that cannot: it matches no string outside the range, and every instant in the
# range written in UTC.
INSTANT_PATTERN = (
    "^("
    rf"(197[1-9]|19[89][0-9]|20[0-9]{{2}}|21[0-8][0-9]|219[0-8])-{_MONTH_DAY}{_TIME}([Zz]|{_OFFSET})"
    rf"|1970-(01-(0[2-9]|[12][0-9]|3[01])|(0[2-9]|1[0-2])-{_DAY}){_TIME}([Zz]|{_OFFSET})"
    rf"|1970-01-01{_TIME}([Zz]|[+-]00:00|-([01][0-9]|2[0-3]):[0-5][0-9])"
    rf"|2199-((0[1-9]|1[01])-{_DAY}|12-(0[1-9]|[12][0-9]|30)){_TIME}([Zz]|{_OFFSET})"
    rf"|2199-12-31{_TIME}([Zz]|[+-]00:00|\+([01][0-9]|2[0-3]):[0-5][0-9])"
    ")$"
)
_INSTANT_DESCRIPTION = f"RFC 3339 with an offset, {INSTANT_RANGE}"
Instant = Annotated[
    datetime,
    Meta(
        tz=True,
        description=_INSTANT_DESCRIPTION,
        # "pattern" for msgspec's own JSON schema; Litestar's OpenAPI generator
        # reads extra keywords from "extra" (and validators ignore unknown ones)
        extra_json_schema={"pattern": INSTANT_PATTERN, "extra": {"pattern": INSTANT_PATTERN}},
    ),
]
Carrier = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="carrier code, e.g. dhl; stored in lower case",
    ),
]
TrackingNumber = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$",
        description="the carrier's tracking number; spaces are dropped and letters upper-cased",
    ),
]
# PostgreSQL text cannot hold NUL, so no text we store may contain one
NO_NUL = r"^[^\x00]*$"
ShortText = Annotated[str, Meta(max_length=200, pattern=NO_NUL)]
LongText = Annotated[str, Meta(max_length=2000, pattern=NO_NUL)]
EventId = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
CountryCode = Annotated[str, Meta(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")]


@overload
def utc(moment: datetime, field: str) -> datetime: ...
@overload
def utc(moment: None, field: str) -> None: ...
@overload
def utc(moment: datetime | None, field: str) -> datetime | None: ...
def utc(moment: datetime | None, field: str) -> datetime | None:
    """Instants are kept in UTC (the offset a sender used is not part of the fact),
    and only those in range (EARLIEST_INSTANT to END_OF_INSTANTS) are kept at all."""
    if moment is None:
        return None
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST_INSTANT <= moment < END_OF_INSTANTS:
        raise InvalidField(field, f"instant out of range: it must be {INSTANT_RANGE}")
    return moment


def _check_no_nul(value: Any, field: str) -> None:
    """Free-form JSON (metadata) must be storable too: no NUL in any key or text."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidField(field, "text may not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise InvalidField(field, "keys may not contain NUL characters")
            _check_no_nul(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_no_nul(item, f"{field}[{index}]")


def normalize_carrier(carrier: str) -> str:
    return carrier.lower()


def normalize_tracking_number(tracking_number: str) -> str:
    return tracking_number.replace(" ", "").upper()


class Place(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    city: ShortText | None = None
    region: ShortText | None = None
    postal_code: Annotated[str, Meta(max_length=32, pattern=NO_NUL)] | None = None
    country: CountryCode | None = None

    def __post_init__(self) -> None:
        if self.country is not None and not self.country.isupper():
            msgspec.structs.force_setattr(self, "country", self.country.upper())


class Recipient(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    name: ShortText | None = None
    # no @, blank or NUL on either side; blanks spelt out, since \s differs between
    # Python's and JavaScript's regular expressions (the document is read by both)
    email: (
        Annotated[str, Meta(max_length=254, pattern=r"^[^@ \t\n\r\x0b\x0c\x00]+@[^@ \t\n\r\x0b\x0c\x00]+$")] | None
    ) = None
    phone: Annotated[str, Meta(max_length=32, pattern=r"^[0-9+() .-]+$")] | None = None


# -- commands ------------------------------------------------------------------


class CreateShipment(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    carrier: Carrier
    tracking_number: TrackingNumber
    promised_by: Instant
    promised_from: Instant | None = None
    reference: ShortText | None = None
    service_level: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] | None = None
    origin: Place | None = None
    destination: Place | None = None
    recipient: Recipient | None = None
    metadata: dict[str, Any] | None = None
    account_id: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] | None = None

    def __post_init__(self) -> None:
        self.carrier = normalize_carrier(self.carrier)
        self.tracking_number = normalize_tracking_number(self.tracking_number)
        _check_no_nul(self.metadata, "metadata")
        self.promised_by = utc(self.promised_by, "promised_by")
        self.promised_from = utc(self.promised_from, "promised_from")
        promise.check_window(self.promised_by, self.promised_from)


class RecordEvent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: Status
    occurred_at: Instant
    event_id: EventId | None = None
    location: Place | None = None
    description: LongText | None = None
    reason: Reason | None = None
    estimated_delivery: Instant | None = None

    def __post_init__(self) -> None:
        self.occurred_at = utc(self.occurred_at, "occurred_at")
        self.estimated_delivery = utc(self.estimated_delivery, "estimated_delivery")


class RecordCarrierEvent(RecordEvent, forbid_unknown_fields=True, kw_only=True):
    """An event addressed by carrier and tracking number instead of shipment id."""

    carrier: Carrier
    tracking_number: TrackingNumber

    def __post_init__(self) -> None:
        super().__post_init__()
        self.carrier = normalize_carrier(self.carrier)
        self.tracking_number = normalize_tracking_number(self.tracking_number)


class RevisePromise(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    promised_by: Instant
    promised_from: Instant | None = None
    reason: Annotated[str, Meta(min_length=1, max_length=500, pattern=NO_NUL)]

    def __post_init__(self) -> None:
        self.promised_by = utc(self.promised_by, "promised_by")
        self.promised_from = utc(self.promised_from, "promised_from")
        promise.check_window(self.promised_by, self.promised_from)


# -- facts ---------------------------------------------------------------------


class TrackingEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as stored: `key` is the carrier's event_id, or a digest of the
    event's content when the carrier sent none, so exact resends are stored once."""

    key: str
    status: Status
    occurred_at: datetime
    event_id: str | None = None
    location: Place | None = None
    description: str | None = None
    reason: Reason | None = None
    estimated_delivery: datetime | None = None
    # from a carrier payload read by an adapter (api/inbound): the source's own
    # code and text, how the time was placed, and the payload it came in
    carrier_code: str | None = None
    carrier_status: str | None = None
    time_rule: str | None = None
    inbound_payload_id: str | None = None

    @classmethod
    def from_command(cls, command: RecordEvent) -> TrackingEvent:
        return cls(
            key=event_key(command),
            status=command.status,
            occurred_at=command.occurred_at,
            event_id=command.event_id,
            location=command.location,
            description=command.description,
            reason=command.reason,
            estimated_delivery=command.estimated_delivery,
        )


def event_key(command: RecordEvent) -> str:
    if command.event_id is not None:
        return command.event_id
    content = msgspec.json.encode(
        [
            command.status,
            command.occurred_at.timestamp(),
            command.location,
            command.description,
            command.reason,
            command.estimated_delivery.timestamp() if command.estimated_delivery else None,
        ]
    )
    return "auto:" + hashlib.sha256(content).hexdigest()[:32]


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """What the events seen so far say. Each field is the maximum or minimum of
    something over those events, with the event key breaking ties."""

    status: Status = Status.LABEL_CREATED
    status_at: datetime | None = None
    status_key: str | None = None
    # first hand-over: the earliest delivered event
    delivered_at: datetime | None = None
    delivered_key: str | None = None
    estimated_delivery: datetime | None = None
    estimate_at: datetime | None = None
    estimate_key: str | None = None
    first_estimated_delivery: datetime | None = None
    first_estimate_at: datetime | None = None
    first_estimate_key: str | None = None
    location: Place | None = None
    location_at: datetime | None = None
    location_key: str | None = None
    # why, according to the latest event that said why
    reason: Reason | None = None
    reason_at: datetime | None = None
    reason_key: str | None = None
    # the carrier's time of the latest event: no movement since means stale
    last_event_at: datetime | None = None

    def advance(self, event: TrackingEvent) -> Progress:
        changes: dict[str, Any] = {}
        at, key = event.occurred_at, event.key
        if self.status_at is None or order_key(event.status, at, key) > order_key(
            self.status, self.status_at, self.status_key or ""
        ):
            changes.update(status=event.status, status_at=at, status_key=key)
        if event.status is Status.DELIVERED and (
            self.delivered_at is None or (at, key) < (self.delivered_at, self.delivered_key or "")
        ):
            changes.update(delivered_at=at, delivered_key=key)
        if event.estimated_delivery is not None:
            if self.estimate_at is None or (at, key) > (self.estimate_at, self.estimate_key or ""):
                changes.update(estimated_delivery=event.estimated_delivery, estimate_at=at, estimate_key=key)
            if self.first_estimate_at is None or (at, key) < (
                self.first_estimate_at,
                self.first_estimate_key or "",
            ):
                changes.update(
                    first_estimated_delivery=event.estimated_delivery,
                    first_estimate_at=at,
                    first_estimate_key=key,
                )
        if event.location is not None and (
            self.location_at is None or (at, key) > (self.location_at, self.location_key or "")
        ):
            changes.update(location=event.location, location_at=at, location_key=key)
        if event.reason is not None and (self.reason_at is None or (at, key) > (self.reason_at, self.reason_key or "")):
            changes.update(reason=event.reason, reason_at=at, reason_key=key)
        if self.last_event_at is None or at > self.last_event_at:
            changes.update(last_event_at=at)
        return msgspec.structs.replace(self, **changes) if changes else self


Detection = Literal["delivery", "deadline"]


class LateDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """A broken promise. `detected_by` says how it was found: at `delivery`, or
    when the `deadline` passed with the shipment still on its way."""

    promised_by: datetime
    detected_at: datetime
    detected_by: Detection
    status_at_detection: Status | None = None
    location_at_detection: Place | None = None
    delivered_at: datetime | None = None
    # delivered, returned or cancelled: nothing more will happen to it
    closed_at: datetime | None = None

    @property
    def delay(self) -> timedelta | None:
        if self.delivered_at is None:
            return None
        return promise.delay(self.promised_by, self.delivered_at)


class PromiseRevision(msgspec.Struct, frozen=True, kw_only=True):
    promised_by: datetime
    promised_from: datetime | None
    previous_promised_by: datetime
    previous_promised_from: datetime | None
    reason: str
    revised_at: datetime


class ShipmentClosed(Exception):
    """The shipment is terminal; its promise is settled and cannot be revised."""


class Shipment(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    carrier: str
    tracking_number: str
    promised_by: datetime
    promised_from: datetime | None = None
    reference: str | None = None
    service_level: str | None = None
    origin: Place | None = None
    destination: Place | None = None
    recipient: Recipient | None = None
    metadata: dict[str, Any] | None = None
    progress: Progress = msgspec.field(default_factory=Progress)
    late_delivery: LateDelivery | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 1
    # what happened since the shipment was loaded, for the shell to save
    changes: list[Change] = msgspec.field(default_factory=list)

    @classmethod
    def create(cls, command: CreateShipment, *, shipment_id: str, account_id: str, now: datetime) -> Shipment:
        """A new shipment, as the command describes it, and the change that says so."""
        shipment = cls(
            id=shipment_id,
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
        shipment.changes.append(ShipmentCreated())
        return shipment

    @property
    def status(self) -> Status:
        return self.progress.status

    def is_late(self, now: datetime) -> bool:
        return promise.is_late(
            self.status,
            self.promised_by,
            self.progress.delivered_at,
            self.late_delivery is not None,
            now,
        )

    def is_at_risk(self, now: datetime) -> bool:
        return promise.is_at_risk(self.status, self.promised_by, self.progress.estimated_delivery, now)

    def is_stale(self, now: datetime, stale_after: timedelta) -> bool:
        return promise.is_stale(self.status, self.progress.last_event_at or self.created_at, now, stale_after)

    def record(self, event: TrackingEvent, now: datetime) -> None:
        """Fold a new (not duplicate) event in; the shell has checked its key is new."""
        at_risk = self.is_at_risk(now)
        self.progress = self.progress.advance(event)
        self._touch(now)
        self.changes.append(EventRecorded(event=event))
        self._settle_lateness(now)
        self._note_risk(at_risk, now)

    def revise_promise(
        self, promised_by: datetime, promised_from: datetime | None, reason: str, now: datetime
    ) -> PromiseRevision:
        if self.status in TERMINAL:
            raise ShipmentClosed(f"the shipment is {self.status}; its promise is settled")
        promise.check_window(promised_by, promised_from)
        # a promise already broken stays broken: record it before it moves
        self.break_promise(now)
        at_risk = self.is_at_risk(now)
        revision = PromiseRevision(
            promised_by=promised_by,
            promised_from=promised_from,
            previous_promised_by=self.promised_by,
            previous_promised_from=self.promised_from,
            reason=reason,
            revised_at=now,
        )
        self.promised_by, self.promised_from = promised_by, promised_from
        self._touch(now)
        self.changes.append(PromiseRevised(revision=revision))
        self._note_risk(at_risk, now)
        return revision

    def break_promise(self, now: datetime) -> bool:
        """The deadline has passed with the shipment still on its way: record it,
        once. Returns whether a record was made."""
        if self.late_delivery is not None or self.status in TERMINAL or now <= self.promised_by:
            return False
        self.late_delivery = LateDelivery(
            promised_by=self.promised_by,
            detected_at=now,
            detected_by="deadline",
            status_at_detection=self.status,
            location_at_detection=self.progress.location,
        )
        self._touch(now)
        self.changes.append(PromiseBroken(late_delivery=self.late_delivery))
        return True

    def _settle_lateness(self, now: datetime) -> None:
        """Keep the lateness record in line with the carrier's data.

        The first hand-over decides: after the promise, a record stands (made
        now if the deadline had not already been caught) and is completed; on
        or before it, the promise was kept after all (a late scan can show
        that) and no record stands. Returned or cancelled closes a record
        without a delivery."""
        record = self.late_delivery
        delivered_at = self.progress.delivered_at
        if delivered_at is not None:
            promised_by = self.promised_by if record is None else record.promised_by
            if not promise.delivered_late(promised_by, delivered_at):
                self.late_delivery = None
            elif record is None:
                self.late_delivery = LateDelivery(
                    promised_by=promised_by,
                    detected_at=now,
                    detected_by="delivery",
                    # about the delivery itself; what else had arrived by now
                    # depends on arrival order, so it is not part of the record
                    status_at_detection=Status.DELIVERED,
                    delivered_at=delivered_at,
                    closed_at=now,
                )
                self.changes.append(DeliveredLate(late_delivery=self.late_delivery))
            elif record.delivered_at != delivered_at:
                self.late_delivery = msgspec.structs.replace(
                    record, delivered_at=delivered_at, closed_at=record.closed_at or now
                )
        elif record is not None and record.closed_at is None and self.status in TERMINAL:
            self.late_delivery = msgspec.structs.replace(record, closed_at=now)

    def _note_risk(self, was_at_risk: bool, now: datetime) -> None:
        at_risk = self.is_at_risk(now)
        if at_risk != was_at_risk:
            self.changes.append(RiskChanged(at_risk=at_risk))

    def _touch(self, now: datetime) -> None:
        self.updated_at = max(now, self.updated_at)
        self.version += 1
