"""USPS: the Tracking API v3 answer (GET /tracking/v3/tracking/{number}) or a
list of them, each with `trackingEvents`.

`eventTimestamp` is a local time without offset: it is placed in the zone of
the event's state (or the account's zone when there is none); a `GMTOffset`
given with the event wins over both.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, TimeRule, parse_json
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "usps"

# Checked against USPS's event codes (the `eventCode` of Tracking API v3, the
# same codes as the Web Tools Track/Confirm Fields `EventCode`; see
# USPS Publication 199 appendix and the return-to-sender and notice-left tables
# of the USPS::WebTools::Tracking::Codes module). Keyed by upper-case code.
CODES: dict[str, tuple[Status, Reason | None]] = {
    "MA": (Status.LABEL_CREATED, None),  # pre-shipment info sent to USPS
    "GX": (Status.CANCELLED, None),  # shipping label cancelled
    "OA": (Status.IN_TRANSIT, None),  # accepted at USPS origin facility
    "03": (Status.IN_TRANSIT, None),  # accepted or picked up
    "10": (Status.IN_TRANSIT, None),  # processed through facility
    "07": (Status.IN_TRANSIT, None),  # arrived at unit
    "OF": (Status.OUT_FOR_DELIVERY, None),  # out for delivery
    "01": (Status.DELIVERED, None),  # delivered
    "02": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # attempted, notice left
    "52": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # notice left
    "16": (Status.AVAILABLE_FOR_PICKUP, None),  # available for pickup
    "04": (Status.EXCEPTION, Reason.REFUSED),  # refused
    "05": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # undeliverable as addressed
    "09": (Status.RETURNED_TO_SENDER, Reason.OTHER),  # return to sender
    "21": (Status.RETURNED_TO_SENDER, Reason.ADDRESS_ISSUE),  # no such number
    "22": (Status.RETURNED_TO_SENDER, Reason.ADDRESS_ISSUE),  # insufficient address
    "23": (Status.RETURNED_TO_SENDER, Reason.ADDRESS_ISSUE),  # moved, left no address
    "24": (Status.RETURNED_TO_SENDER, Reason.ADDRESS_ISSUE),  # forward expired
    "25": (Status.RETURNED_TO_SENDER, Reason.ADDRESS_ISSUE),  # addressee unknown
    "26": (Status.RETURNED_TO_SENDER, Reason.ADDRESS_ISSUE),  # vacant
    "27": (Status.RETURNED_TO_SENDER, Reason.RECIPIENT_UNAVAILABLE),  # unclaimed
    "28": (Status.RETURNED_TO_SENDER, Reason.OTHER),  # deceased
    "29": (Status.RETURNED_TO_SENDER, Reason.OTHER),  # other
    "31": (Status.RETURNED_TO_SENDER, Reason.RECIPIENT_UNAVAILABLE),  # not picked up
}

# USPS gives events no category of their own: an unknown code is in transit, reason other.
UNKNOWN: tuple[Status, Reason | None] = (Status.IN_TRANSIT, Reason.OTHER)

# Where USPS puts the estimated delivery, most precise last: the last present wins.
ESTIMATE_FIELDS = ("expectedDeliveryDate", "predictedDeliveryDate", "expectedDeliveryTimeStamp")


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    packages = document if isinstance(document, list) else [document]
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for package_index, package in enumerate(packages):
        if not isinstance(package, dict):
            errors.append(ItemError(where=f"[{package_index}]", message="a tracking answer must be an object"))
            continue
        tracking_number = package.get("trackingNumber")
        tracking_events = package.get("trackingEvents")
        if not isinstance(tracking_number, str) or not tracking_number or not isinstance(tracking_events, list):
            errors.append(
                ItemError(where=f"[{package_index}]", message="trackingNumber and trackingEvents are required")
            )
            continue
        estimated = estimated_delivery(package)
        for index, event in enumerate(tracking_events):
            where = f"[{package_index}].trackingEvents[{index}]"
            try:
                events.append(map_event(tracking_number, event, estimated, context))
            except ValueError as error:
                errors.append(ItemError(where=where, message=str(error)))
    return Adapted(events=events, errors=errors)


def estimated_delivery(package: dict[str, Any]) -> date | None:
    found: date | None = None
    for field in ESTIMATE_FIELDS:
        value = package.get(field)
        if isinstance(value, str) and len(value) >= 10:
            try:
                # A date, or a local time whose date is the promise; never shifted through UTC.
                found = date.fromisoformat(value[:10])
            except ValueError:
                continue
    return found


def text(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    return value.strip() if isinstance(value, str) else ""


def map_event(tracking_number: str, event: Any, estimated: date | None, context: Context) -> MappedEvent:
    if not isinstance(event, dict):
        raise ValueError("an event must be an object")
    code = text(event, "eventCode")
    event_type = text(event, "eventType")
    if not code and not event_type:
        raise ValueError("an event needs an eventCode or an eventType")
    unmapped = code.upper() not in CODES
    status, reason = CODES.get(code.upper(), UNKNOWN)
    stamp = text(event, "eventTimestamp")
    if not stamp:
        raise ValueError("eventTimestamp is required")
    local = datetime.fromisoformat(stamp)
    country = text(event, "eventCountry") or "US"
    state = text(event, "eventState")
    offset = text(event, "GMTOffset")
    if local.tzinfo is None and offset:
        occurred_at, time_rule = datetime.fromisoformat(f"{stamp}{offset}"), TimeRule.OFFSET
    else:
        occurred_at, time_rule = place_local_time(local, country, state, context)
    place = ", ".join(part for part in (text(event, "eventCity"), state, text(event, "eventZIPCode")) if part)
    return MappedEvent(
        tracking_number=tracking_number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=place or None,
        description=event_type,
        estimated_delivery=estimated,
        carrier_event_id=None,
        carrier_code=code,
        carrier_status=event_type,
        unmapped=unmapped,
    )
