"""EasyPost: the `tracker.updated` webhook event (`{"object": "Event",
"description": "tracker.updated", "result": {...Tracker...}}`), signed with
`X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256 of the body>` (the
webhook secret NFKD-normalised, as EasyPost's client libraries do).

The tracker carries every `tracking_details` entry so far, each with
EasyPost's `status` (its category) and `status_detail` (why). The status table
is keyed by status; the detail gives the reason. A status the table does not
know is in transit, reason other; a detail it does not know keeps the status
with reason other (for an exception) and is flagged unmapped. Times are ISO 8601
with their offset. The estimate is `est_delivery_date`, else the carrier's
local date in `carrier_detail.est_delivery_date_local`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, parse_json
from api.inbound.adapters.estimates import promised_day
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "easypost"

# Tracker and TrackingDetail `status` (docs.easypost.com, "Trackers").
STATUSES: dict[str, Status] = {
    "unknown": Status.IN_TRANSIT,
    "pre_transit": Status.LABEL_CREATED,
    "in_transit": Status.IN_TRANSIT,
    "out_for_delivery": Status.OUT_FOR_DELIVERY,
    "available_for_pickup": Status.AVAILABLE_FOR_PICKUP,
    "delivered": Status.DELIVERED,
    "return_to_sender": Status.RETURNED_TO_SENDER,
    "failure": Status.EXCEPTION,
    "cancelled": Status.CANCELLED,
    "error": Status.EXCEPTION,
}

# `status_detail` values and the reason each gives; None where it says no more
# than the status does.
DETAILS: dict[str, Reason | None] = {
    "address_correction": Reason.ADDRESS_ISSUE,
    "arrived_at_destination": None,
    "arrived_at_facility": None,
    "arrived_at_pickup_location": None,
    "awaiting_information": None,
    "cancelled": None,
    "damaged": Reason.DAMAGED,
    "delayed": Reason.CARRIER_DELAY,
    "delivery_exception": Reason.OTHER,
    "departed_facility": None,
    "departed_origin_facility": None,
    "expired": Reason.OTHER,
    "failure": Reason.OTHER,
    "held": Reason.OTHER,
    "in_transit": None,
    "label_created": None,
    "lost": Reason.LOST,
    "missorted": Reason.CARRIER_DELAY,
    "out_for_delivery": None,
    "received_at_destination_facility": None,
    "received_at_origin_facility": None,
    "refused": Reason.REFUSED,
    "return": None,
    "return_to_sender": None,
    "status_update": None,
    "transferred_to_destination_carrier": None,
    "transit_exception": Reason.CARRIER_DELAY,
    "undeliverable": Reason.ADDRESS_ISSUE,
    "unknown": None,
    "weather_delay": Reason.WEATHER,
}

# statuses whose event carries a reason (exception, failed attempt)
NEEDS_REASON = frozenset({Status.EXCEPTION, Status.DELIVERY_ATTEMPTED})


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    if not isinstance(document, dict):
        raise PayloadError("an EasyPost event is a JSON object")
    # the event wraps the tracker in `result`; a bare Tracker is read too
    tracker = document.get("result") if document.get("object") == "Event" else document
    if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
        raise PayloadError("an EasyPost tracker.updated event has a `result` Tracker")
    number = tracker.get("tracking_code")
    details = tracker.get("tracking_details")
    if not isinstance(number, str) or not number.strip():
        raise PayloadError("the tracker has no `tracking_code`")
    if not isinstance(details, list):
        raise PayloadError("the tracker has no `tracking_details` list")
    estimated = estimate(tracker)
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for index, detail in enumerate(details):
        try:
            events.append(map_detail(number.strip(), detail, estimated, context))
        except (ValueError, TypeError) as error:
            errors.append(ItemError(where=f"result.tracking_details[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return value.strip() if isinstance(value, str) else ""


def estimate(tracker: dict[str, Any]) -> date | None:
    carrier_detail = tracker.get("carrier_detail")
    local = text(carrier_detail, "est_delivery_date_local") if isinstance(carrier_detail, dict) else ""
    for stamp in (text(tracker, "est_delivery_date"), local):
        if stamp and (day := promised_day(stamp)) is not None:
            return day
    return None


def map_detail(number: str, detail: Any, estimated: date | None, context: Context) -> MappedEvent:
    if not isinstance(detail, dict):
        raise ValueError("a tracking detail must be an object")
    stamp = text(detail, "datetime")
    if not stamp:
        raise ValueError("a tracking detail needs its datetime")
    try:
        local = datetime.fromisoformat(stamp)
    except ValueError:
        raise ValueError(f"datetime {stamp!r} is not an ISO 8601 time") from None
    code, why = text(detail, "status"), text(detail, "status_detail")
    known_status = STATUSES.get(code.lower())
    known_detail = why.lower() in DETAILS if why else True
    status = known_status or Status.IN_TRANSIT
    reason = DETAILS.get(why.lower()) if why else None
    if known_status is None or not known_detail:
        reason = Reason.OTHER
    if status in NEEDS_REASON and reason is None:
        reason = Reason.OTHER
    if status not in NEEDS_REASON and known_status is not None and known_detail:
        reason = None
    where = detail.get("tracking_location")
    where = where if isinstance(where, dict) else {}
    country, state = text(where, "country"), text(where, "state")
    occurred_at, time_rule = place_local_time(local, country, state, context)
    place = ", ".join(part for part in (text(where, "city"), state, text(where, "zip"), country) if part)
    message = text(detail, "message")
    return MappedEvent(
        tracking_number=number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=place or None,
        description=message or text(detail, "description"),
        estimated_delivery=estimated,
        carrier_event_id=None,
        carrier_code=f"{code}/{why}" if why else code,
        carrier_status=message,
        unmapped=known_status is None or not known_detail,
    )
