"""GLS: the Track And Trace V1 answer (GET /track-and-trace-v1/tracking/simple/
trackids/{unitnos}), `{"parcels": [{"requested", "unitno", "status",
"statusDateTime", "events": [{"code", "city", "postalCode", "country",
"description", "eventDateTime"}], "errorCode", "errorMessage"}]}`.

Event codes are `TYPE.SUBTYPE` (`INTIAL.PREADVICE`, `DELIVD.PARCELSHOP`). An
event code the table does not know takes the parcel's documented `status` when
it is the parcel's latest event (its time is `statusDateTime`), else in
transit; either way with reason other. Times carry an offset (`+0200`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, parse_json
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "gls"

# The event codes in the examples of GLS's Track And Trace V1 OpenAPI document
# (ecitrackandtrace.yaml, version 1.0.7: Response200 examples and EventDTO).
# Keyed by upper-case code. The full list is served by GET /tracking/events/codes.
CODES: dict[str, tuple[Status, Reason | None]] = {
    "INTIAL.PREADVICE": (Status.LABEL_CREATED, None),  # data entered, parcel not yet handed over
    "INTIAL.E48_DATA": (Status.LABEL_CREATED, None),  # provided by the sender for collection by GLS
    "INTIAL.NORMAL": (Status.IN_TRANSIT, None),  # handed over to GLS
    "DELIVD.PARCELSHOP": (Status.AVAILABLE_FOR_PICKUP, None),  # delivered at the ParcelShop for collection
}

# The parcel `status` enum of ParcelDTO in the same document: GLS's own category.
PARCEL_STATUSES: dict[str, Status] = {
    "PLANNEDPICKUP": Status.LABEL_CREATED,
    "INPICKUP": Status.LABEL_CREATED,
    "PREADVICE": Status.LABEL_CREATED,
    "NOTPICKEDUP": Status.EXCEPTION,
    "INTRANSIT": Status.IN_TRANSIT,
    "INWAREHOUSE": Status.IN_TRANSIT,
    "INDELIVERY": Status.OUT_FOR_DELIVERY,
    "DELIVEREDPS": Status.AVAILABLE_FOR_PICKUP,
    "DELIVERED": Status.DELIVERED,
    "NOTDELIVERED": Status.DELIVERY_ATTEMPTED,
    "CANCELED": Status.CANCELLED,
}


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    parcels = document.get("parcels") if isinstance(document, dict) else None
    if not isinstance(parcels, list):
        raise PayloadError("a GLS answer has a `parcels` list")
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for parcel_index, parcel in enumerate(parcels):
        where = f"parcels[{parcel_index}]"
        if not isinstance(parcel, dict):
            errors.append(ItemError(where=where, message="a parcel must be an object"))
            continue
        if parcel.get("errorCode"):
            errors.append(ItemError(where=where, message=f"{parcel.get('errorCode')}: {parcel.get('errorMessage')}"))
            continue
        number = parcel.get("unitno") or parcel.get("requested")
        parcel_events = parcel.get("events")
        if not isinstance(number, str) or not number or not isinstance(parcel_events, list):
            errors.append(ItemError(where=where, message="unitno or requested, and events, are required"))
            continue
        for index, event in enumerate(parcel_events):
            try:
                events.append(map_event(number, parcel, event, context))
            except ValueError as error:
                errors.append(ItemError(where=f"{where}.events[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return value.strip() if isinstance(value, str) else ""


def map_event(number: str, parcel: dict[str, Any], event: Any, context: Context) -> MappedEvent:
    if not isinstance(event, dict):
        raise ValueError("an event must be an object")
    code = text(event, "code")
    if not code:
        raise ValueError("an event needs a code")
    stamp = text(event, "eventDateTime")
    local = datetime.fromisoformat(stamp)
    known = CODES.get(code.upper())
    unmapped = known is None
    if known is not None:
        status, reason = known
    else:
        latest = stamp == text(parcel, "statusDateTime")
        status = PARCEL_STATUSES.get(text(parcel, "status").upper(), Status.IN_TRANSIT) if latest else Status.IN_TRANSIT
        reason = Reason.OTHER
    country = text(event, "country")
    occurred_at, time_rule = place_local_time(local, country, None, context)
    place = ", ".join(part for part in (text(event, "city"), text(event, "postalCode"), country) if part)
    return MappedEvent(
        tracking_number=number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=place or None,
        description=text(event, "description"),
        estimated_delivery=None,
        carrier_event_id=None,
        carrier_code=code,
        carrier_status=text(event, "description"),
        unmapped=unmapped,
    )
