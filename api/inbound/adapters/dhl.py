"""DHL: the Shipment Tracking – Unified API answer (GET https://api-eu.dhl.com/track/shipments),
`{"shipments": [{"id", "service", "status", "events": [{"timestamp", "location":
{"address": {"countryCode", "postalCode", "addressLocality"}}, "statusCode",
"status", "statusDetailed", "description", "remark"}], "estimatedTimeOfDelivery",
"estimatedDeliveryTimeFrame": {"estimatedFrom", "estimatedThrough"}, "returnFlag"}]}`.

`statusCode` is DHL's own category for every event (five values). For parcel-de
shipments `status` holds a short event code (`ZU`, `PO`, `LA`) that says more
than the category; the table is keyed by service and that code. Timestamps come
with an offset, or (express) without one: those are placed in the zone of the
event's country. `returnFlag` marks a shipment going back to its sender, so its
delivery is a return.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, parse_json
from api.inbound.adapters.estimates import destination_zone, promised_day
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "dhl"

# The `statusCode` enum of the Unified API's OpenAPI document (track_v1.5.x.yaml,
# supermodelIoLogisticsTrackingShipmentEvent.statusCode): DHL's own category.
STATUS_CODES: dict[str, tuple[Status, Reason | None]] = {
    "pre-transit": (Status.LABEL_CREATED, None),
    "transit": (Status.IN_TRANSIT, None),
    "delivered": (Status.DELIVERED, None),
    "failure": (Status.EXCEPTION, Reason.OTHER),  # DHL's category says nothing of why
    "unknown": (Status.IN_TRANSIT, Reason.OTHER),
}

# The parcel-de event codes that arrive in `status` since 29 April 2024 (the API
# page's changelog), with their meaning from DHL's status list status_1.csv
# (developer.dhl.com, rows for service parcel-de). Keyed by (service, upper-case code).
SERVICE_CODES: dict[tuple[str, str], tuple[Status, Reason | None]] = {
    ("parcel-de", "VA"): (Status.LABEL_CREATED, None),  # electronic pre-advice of a shipment
    ("parcel-de", "AE"): (Status.IN_TRANSIT, None),  # pickup from the sender successful
    ("parcel-de", "AN"): (Status.EXCEPTION, Reason.OTHER),  # pickup from the sender not successful
    ("parcel-de", "ES"): (Status.IN_TRANSIT, None),  # first processed by DHL (handed over)
    ("parcel-de", "AA"): (Status.IN_TRANSIT, None),  # departed from a facility
    ("parcel-de", "EE"): (Status.IN_TRANSIT, None),  # arrived at a facility
    ("parcel-de", "NB"): (Status.IN_TRANSIT, None),  # normal processing
    ("parcel-de", "PO"): (Status.OUT_FOR_DELIVERY, None),  # in delivery process
    ("parcel-de", "LA"): (Status.AVAILABLE_FOR_PICKUP, None),  # in storage, waiting for pickup by the receiver
    ("parcel-de", "ZF"): (Status.AVAILABLE_FOR_PICKUP, None),  # delivered to a post office or Packstation
    ("parcel-de", "ZN"): (Status.DELIVERY_ATTEMPTED, Reason.OTHER),  # delivery attempt not successful
    ("parcel-de", "ZU"): (Status.DELIVERED, None),  # delivery successful
    ("parcel-de", "ZO"): (Status.EXCEPTION, Reason.CUSTOMS),  # customs
    ("parcel-de", "BV"): (Status.EXCEPTION, Reason.OTHER),  # exception
}

# Services whose events carry a code in `status`: an unlisted code there keeps its
# category but is marked reason other, so that an operator sees it.
CODED_SERVICES = frozenset(service for service, _ in SERVICE_CODES)


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    shipments = document.get("shipments") if isinstance(document, dict) else None
    if not isinstance(shipments, list):
        raise PayloadError("a DHL answer has a `shipments` list")
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for shipment_index, shipment in enumerate(shipments):
        where = f"shipments[{shipment_index}]"
        number = shipment.get("id") if isinstance(shipment, dict) else None
        shipment_events = shipment.get("events") if isinstance(shipment, dict) else None
        if isinstance(number, int) and not isinstance(number, bool):
            number = str(number)
        if not isinstance(shipment, dict) or not isinstance(number, str) or not number:
            errors.append(ItemError(where=where, message="a shipment needs an id"))
            continue
        if not isinstance(shipment_events, list):
            errors.append(ItemError(where=where, message="a shipment needs an events list"))
            continue
        estimated = estimated_delivery(shipment)
        for index, event in enumerate(shipment_events):
            try:
                events.append(map_event(number, shipment, event, estimated, context))
            except (ValueError, OverflowError) as error:
                errors.append(ItemError(where=f"{where}.events[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def record(parent: dict[str, Any], field: str) -> dict[str, Any]:
    value = parent.get(field)
    return value if isinstance(value, dict) else {}


def text(parent: dict[str, Any], field: str) -> str:
    value = parent.get(field)
    return value.strip() if isinstance(value, str) else ""


def estimated_delivery(shipment: dict[str, Any]) -> date | None:
    # Once delivered, DHL writes the delivery time where the estimate was: no estimate then.
    if text(record(shipment, "status"), "statusCode").lower() == "delivered":
        return None
    destination = record(record(shipment, "destination"), "address")
    zone = destination_zone(text(destination, "countryCode"), None)
    # The window's end is the promise; the single estimate when there is no window.
    window_end = text(record(shipment, "estimatedDeliveryTimeFrame"), "estimatedThrough")
    return promised_day(window_end, zone) or promised_day(text(shipment, "estimatedTimeOfDelivery"), zone)


def map_event(
    number: str, shipment: dict[str, Any], event: Any, estimated: date | None, context: Context
) -> MappedEvent:
    if not isinstance(event, dict):
        raise ValueError("an event must be an object")
    status_code = text(event, "statusCode").lower()
    status_text = text(event, "status")
    if not status_code and not status_text:
        raise ValueError("an event needs a statusCode or a status")
    service = text(shipment, "service").lower()
    known = SERVICE_CODES.get((service, status_text.upper()))
    unmapped = known is None and (service in CODED_SERVICES or status_code not in STATUS_CODES)
    if known is not None:
        status, reason = known
    elif status_code in STATUS_CODES:
        status, reason = STATUS_CODES[status_code]
        if service in CODED_SERVICES and reason is None:
            reason = Reason.OTHER
    else:
        status, reason = Status.IN_TRANSIT, Reason.OTHER
    if status == Status.DELIVERED and shipment.get("returnFlag") is True:
        status, reason = Status.RETURNED_TO_SENDER, None
    stamp = text(event, "timestamp")
    if not stamp:
        raise ValueError("timestamp is required")
    address = record(record(event, "location"), "address")
    country = text(address, "countryCode")
    occurred_at, time_rule = place_local_time(datetime.fromisoformat(stamp), country, None, context)
    place = ", ".join(part for part in (text(address, "addressLocality"), text(address, "postalCode"), country) if part)
    description = text(event, "description") or text(event, "statusDetailed") or status_text or status_code
    return MappedEvent(
        tracking_number=number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=place or None,
        description=description,
        estimated_delivery=estimated,
        carrier_event_id=None,
        carrier_code=f"{status_code}:{status_text}" if status_text else status_code,
        carrier_status=description,
        unmapped=unmapped,
    )
