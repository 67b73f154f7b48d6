"""What the API sends: response structs and the one place domain objects become them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from domain.cases import Case, CaseAssigned, CaseBreached, CaseChange, CaseOpened, CaseStatusChanged
from domain.events import (
    Change,
    DeliveredLate,
    EventRecorded,
    PromiseBroken,
    PromiseRevised,
    RiskChanged,
    ShipmentCreated,
)
from domain.feedback import TRACKING, TRACKING_VALID_FOR, LinkKeys
from domain.shipment import LateDelivery, Place, PromiseRevision, Recipient, Shipment, TrackingEvent
from domain.status import Reason, Status


class ShipmentOut(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    carrier: str
    tracking_number: str
    reference: str | None
    status: Status
    status_at: datetime | None
    promised_by: datetime
    promised_from: datetime | None
    estimated_delivery: datetime | None
    first_estimated_delivery: datetime | None
    delivered_at: datetime | None
    late: bool
    at_risk: bool
    # on its way with no event for a while (ONTIME_STALE_AFTER_HOURS)
    stale: bool
    last_event_at: datetime | None
    # why, according to the latest event that said why
    exception_reason: Reason | None
    last_location: Place | None
    origin: Place | None
    destination: Place | None
    # personal data: present only for readers allowed to see it (and asking)
    recipient: Recipient | msgspec.UnsetType | None = msgspec.UNSET
    # the links to send the recipient, beside the recipient and only for readers
    # who see it: the tracking page, and the rating page (null until delivered)
    tracking_url: str | msgspec.UnsetType | None = msgspec.UNSET
    feedback_url: str | msgspec.UnsetType | None = msgspec.UNSET
    service_level: str | None
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int


class EventOut(msgspec.Struct, kw_only=True):
    status: Status
    occurred_at: datetime
    event_id: str | None
    location: Place | None
    description: str | None
    reason: Reason | None
    estimated_delivery: datetime | None
    received_at: datetime | None = None
    # what the carrier said, as it said it, for an event that came through a
    # carrier's payload (POST /v1/inbound/{source}): its own code and wording
    carrier_code: str | None = None
    carrier_status: str | None = None


class LateDeliveryOut(msgspec.Struct, kw_only=True):
    shipment_id: str
    promised_by: datetime
    detected_at: datetime
    detected_by: str
    status_at_detection: Status | None
    location_at_detection: Place | None
    delivered_at: datetime | None
    delay_seconds: int | None
    closed_at: datetime | None


# Change messages, as the change feed and the live feed carry them. `seq` is
# spliced in front when a change is read back (see changes.with_seq), so each
# body is encoded once, when the change is written.


class CreatedChange(msgspec.Struct, tag_field="type", tag="created", kw_only=True):
    """A new shipment, as it was created."""

    shipment: ShipmentOut


class EventChange(msgspec.Struct, tag_field="type", tag="event", kw_only=True):
    shipment: ShipmentOut
    event: EventOut


class PromiseRevisedChange(msgspec.Struct, tag_field="type", tag="promise_revised", kw_only=True):
    shipment: ShipmentOut
    promise: PromiseRevision


class LateChange(msgspec.Struct, tag_field="type", tag="late", kw_only=True):
    shipment: ShipmentOut
    late_delivery: LateDeliveryOut


class AtRiskChange(msgspec.Struct, tag_field="type", tag="at_risk", kw_only=True):
    """The shipment turned at risk, or (with `at_risk` false in it) fits its promise again."""

    shipment: ShipmentOut


# every kind of change the log carries (the change feed documents each, with its seq)
CHANGES: tuple[type[msgspec.Struct], ...] = (
    CreatedChange,
    EventChange,
    PromiseRevisedChange,
    LateChange,
    AtRiskChange,
)


TRACKING_URLS_KEPT = 100_000


@dataclass(frozen=True)
class PublicLinks:
    """The links a shipper sends its recipient, each the whole credential: the
    tracking page `{base_url}/t/{token}` and, once delivered, the rating page
    `{base_url}/f/{token}`."""

    keys: LinkKeys
    base_url: str
    # a shipment's tracking link never changes while the current key does not:
    # signed once per process, not on every read (an HMAC was a twentieth of a poll)
    _tracking: dict[tuple[int, str, datetime], str] = field(default_factory=dict, compare=False, repr=False)

    def tracking_url(self, shipment: Shipment) -> str:
        remembered = (self.keys.current, shipment.id, shipment.created_at)
        url = self._tracking.get(remembered)
        if url is None:
            if len(self._tracking) >= TRACKING_URLS_KEPT:
                self._tracking.clear()
            token = self.keys.sign_for(TRACKING, shipment.id, shipment.created_at + TRACKING_VALID_FOR)
            url = self._tracking[remembered] = f"{self.base_url}/t/{token}"
        return url

    def url_for(self, shipment: Shipment) -> str | None:
        delivered_at = shipment.progress.delivered_at
        if delivered_at is None or shipment.status is not Status.DELIVERED:
            return None
        return f"{self.base_url}/f/{self.keys.sign(shipment.id, delivered_at)}"


def shipment_out(
    shipment: Shipment, now: datetime, *, with_recipient: bool = False, links: PublicLinks | None = None
) -> ShipmentOut:
    """A reader who sees the recipient sees the feedback link too (null without `links`:
    a shipment just created is never delivered)."""
    progress = shipment.progress
    return ShipmentOut(
        id=shipment.id,
        account_id=shipment.account_id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        reference=shipment.reference,
        status=progress.status,
        status_at=progress.status_at,
        promised_by=shipment.promised_by,
        promised_from=shipment.promised_from,
        estimated_delivery=progress.estimated_delivery,
        first_estimated_delivery=progress.first_estimated_delivery,
        delivered_at=progress.delivered_at,
        late=shipment.is_late(now),
        at_risk=shipment.is_at_risk(now),
        stale=shipment.is_stale(now, STALE_AFTER),
        last_event_at=progress.last_event_at,
        exception_reason=progress.reason,
        last_location=progress.location,
        origin=shipment.origin,
        destination=shipment.destination,
        recipient=shipment.recipient if with_recipient else msgspec.UNSET,
        tracking_url=(None if links is None else links.tracking_url(shipment)) if with_recipient else msgspec.UNSET,
        feedback_url=(None if links is None else links.url_for(shipment)) if with_recipient else msgspec.UNSET,
        service_level=shipment.service_level,
        metadata=shipment.metadata,
        created_at=shipment.created_at,
        updated_at=shipment.updated_at,
        version=shipment.version,
    )


def event_out(event: TrackingEvent, received_at: datetime | None = None) -> EventOut:
    return EventOut(
        status=event.status,
        occurred_at=event.occurred_at,
        event_id=event.event_id,
        location=event.location,
        description=event.description,
        reason=event.reason,
        estimated_delivery=event.estimated_delivery,
        received_at=received_at,
        carrier_code=event.carrier_code,
        carrier_status=event.carrier_status,
    )


def late_delivery_out(shipment_id: str, record: LateDelivery) -> LateDeliveryOut:
    delay = record.delay
    return LateDeliveryOut(
        shipment_id=shipment_id,
        promised_by=record.promised_by,
        detected_at=record.detected_at,
        detected_by=record.detected_by,
        status_at_detection=record.status_at_detection,
        location_at_detection=record.location_at_detection,
        delivered_at=record.delivered_at,
        delay_seconds=None if delay is None else int(delay.total_seconds()),
        closed_at=record.closed_at,
    )


_encode = msgspec.json.Encoder().encode

# Set once from the settings by create_app; a process-wide policy, like a constant.
STALE_AFTER = timedelta(hours=48)


def change_kind_and_body(shipment: Shipment, change: Change, now: datetime) -> tuple[str, bytes]:
    """Encode one change with the shipment as it stands now (recipient left out:
    the change log is read by feeds, and personal data stays off them)."""
    after = shipment_out(shipment, now)
    match change:
        case ShipmentCreated():
            return "created", _encode(CreatedChange(shipment=after))
        case EventRecorded(event=event):
            return "event", _encode(EventChange(shipment=after, event=event_out(event, now)))
        case PromiseRevised(revision=revision):
            return "promise_revised", _encode(PromiseRevisedChange(shipment=after, promise=revision))
        case DeliveredLate(late_delivery=record) | PromiseBroken(late_delivery=record):
            return "late", _encode(LateChange(shipment=after, late_delivery=late_delivery_out(shipment.id, record)))
        case RiskChanged():
            return "at_risk", _encode(AtRiskChange(shipment=after))
    raise TypeError(f"unknown change {change!r}")


# -- cases ----------------------------------------------------------------------
# A case's changes carry the case as it stands, never its comments (internal).


class CaseOut(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    shipment_id: str | None
    type: str
    priority: str
    subject: str
    status: str
    assignee_key: str | None
    opened_by: str
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    response_due: datetime
    resolution_due: datetime
    response_breached_at: datetime | None
    resolution_breached_at: datetime | None
    # the deadline nearest to breach; null once resolved or closed
    next_due: datetime | None
    version: int


class CaseOpenedChange(msgspec.Struct, tag_field="type", tag="case_opened", kw_only=True):
    case: CaseOut


class CaseStatusChangedChange(msgspec.Struct, tag_field="type", tag="case_status_changed", kw_only=True):
    case: CaseOut
    previous_status: str


class CaseAssignedChange(msgspec.Struct, tag_field="type", tag="case_assigned", kw_only=True):
    case: CaseOut
    previous_assignee_key: str | None


class CaseBreachedChange(msgspec.Struct, tag_field="type", tag="case_breached", kw_only=True):
    """A case's response or resolution deadline passed unmet."""

    case: CaseOut
    deadline: Literal["response", "resolution"]


CHANGES += (CaseOpenedChange, CaseStatusChangedChange, CaseAssignedChange, CaseBreachedChange)


def case_out(case: Case) -> CaseOut:
    return CaseOut(
        id=case.id,
        account_id=case.account_id,
        shipment_id=case.shipment_id,
        type=case.type.value,
        priority=case.priority.value,
        subject=case.subject,
        status=case.status.value,
        assignee_key=case.assignee_key,
        opened_by=case.opened_by,
        opened_at=case.opened_at,
        first_response_at=case.first_response_at,
        resolved_at=case.resolved_at,
        closed_at=case.closed_at,
        response_due=case.response_due,
        resolution_due=case.resolution_due,
        response_breached_at=case.response_breached_at,
        resolution_breached_at=case.resolution_breached_at,
        next_due=case.next_due,
        version=case.version,
    )


def case_change_kind_and_body(case: Case, change: CaseChange) -> tuple[str, bytes]:
    after = case_out(case)
    match change:
        case CaseOpened():
            return "case_opened", _encode(CaseOpenedChange(case=after))
        case CaseStatusChanged(previous=previous):
            return "case_status_changed", _encode(CaseStatusChangedChange(case=after, previous_status=previous.value))
        case CaseAssigned(previous=previous):
            return "case_assigned", _encode(CaseAssignedChange(case=after, previous_assignee_key=previous))
        case CaseBreached(deadline=deadline):
            return "case_breached", _encode(CaseBreachedChange(case=after, deadline=deadline.value))
    raise TypeError(f"unknown case change {change!r}")


# -- satisfaction ---------------------------------------------------------------


class FeedbackOut(msgspec.Struct, kw_only=True):
    """The recipient's rating of a delivered shipment."""

    shipment_id: str
    rating: int
    comment: str | None
    # whether the delivery kept its promise, as it stood when rated
    on_time: bool
    delivered_at: datetime
    received_at: datetime


class FeedbackReceivedChange(msgspec.Struct, tag_field="type", tag="feedback_received", kw_only=True):
    """The recipient rated the delivery through its feedback link."""

    feedback: FeedbackOut


CHANGES += (FeedbackReceivedChange,)


# -- webhooks -------------------------------------------------------------------


class WebhookDisabledChange(msgspec.Struct, tag_field="type", tag="webhook_disabled", kw_only=True):
    """An endpoint's deliveries failed for the whole retry window; it is disabled
    until replayed (POST /v1/webhooks/{id}/replay)."""

    webhook_id: str
    url: str
    failing_since: datetime
    last_error: str | None


CHANGES += (WebhookDisabledChange,)
