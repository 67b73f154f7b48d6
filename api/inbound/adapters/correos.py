"""Correos (Spain): the JSON of the correos.es parcel locator
(GET https://api1.correos.es/digital-services/searchengines/api/v1/envios?text=…),
`{"shipment": [{"shipmentCode", "events": [{"eventDate", "eventTime", "phase",
"summaryText", "extendedText", "codired"}]}]}`.

The events carry no code: `summaryText` is what names the event, so the table
is keyed by it (lower case, accents and a final full stop removed), and
`phase` (1 pre-registered, 2 on its way, 3 in delivery, 4 delivered) is the
source's own category for a text the table does not know. Dates are
`dd/mm/yyyy`, times Spanish local time without offset.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from datetime import time as clock_time
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, parse_json
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "correos"

# The summary texts the locator answers with language=ES, checked against the
# locator's own answers as parsers of it record them (see the module docstring);
# Correos publishes no code list for this interface.
TEXTS: dict[str, tuple[Status, Reason | None]] = {
    "prerregistrado": (Status.LABEL_CREATED, None),
    "pre-registrado": (Status.LABEL_CREATED, None),
    "admitido": (Status.IN_TRANSIT, None),
    "en transito": (Status.IN_TRANSIT, None),
    "en proceso de entrega": (Status.OUT_FOR_DELIVERY, None),
    "en reparto": (Status.OUT_FOR_DELIVERY, None),
    "entregado": (Status.DELIVERED, None),
    "entrega no realizada": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),
    "disponible para recoger en oficina": (Status.AVAILABLE_FOR_PICKUP, None),
    "en devolucion": (Status.RETURNED_TO_SENDER, None),
    "devuelto": (Status.RETURNED_TO_SENDER, None),
    "direccion incorrecta": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),
    "rehusado": (Status.EXCEPTION, Reason.REFUSED),
    "retenido en aduana": (Status.EXCEPTION, Reason.CUSTOMS),
}

# The source's own category, for a text the table does not know: reason other.
PHASES: dict[str, Status] = {
    "1": Status.LABEL_CREATED,
    "2": Status.IN_TRANSIT,
    "3": Status.OUT_FOR_DELIVERY,
    "4": Status.DELIVERED,
}


def normalised_text(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(plain.lower().split()).rstrip(".")


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    shipments = document.get("shipment") if isinstance(document, dict) else None
    if not isinstance(shipments, list):
        raise PayloadError("a Correos answer has a `shipment` list")
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for shipment_index, shipment in enumerate(shipments):
        code = shipment.get("shipmentCode") if isinstance(shipment, dict) else None
        shipment_events = shipment.get("events") if isinstance(shipment, dict) else None
        if not isinstance(code, str) or not code or not isinstance(shipment_events, list):
            errors.append(
                ItemError(where=f"shipment[{shipment_index}]", message="shipmentCode and events are required")
            )
            continue
        for index, event in enumerate(shipment_events):
            try:
                events.append(map_event(code, event, context))
            except ValueError as error:
                errors.append(ItemError(where=f"shipment[{shipment_index}].events[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def local_time(day: str, time: str) -> datetime:
    """`dd/mm/yyyy` and `hh:mm[:ss]`, without strptime, which cost most of a mapping."""
    parts = day.split("/")
    if len(parts) != 3 or not all(part.isdigit() for part in parts) or len(parts[2]) != 4:
        raise ValueError(f"eventDate {day!r} is not dd/mm/yyyy")
    return datetime.combine(date(int(parts[2]), int(parts[1]), int(parts[0])), clock_time.fromisoformat(time))


def map_event(shipment_code: str, event: Any, context: Context) -> MappedEvent:
    if not isinstance(event, dict):
        raise ValueError("an event must be an object")
    summary = str(event.get("summaryText") or "").strip()
    extended = str(event.get("extendedText") or "").strip()
    phase = str(event.get("phase") or "").strip()
    if not summary and not phase:
        raise ValueError("an event needs a summaryText or a phase")
    known = TEXTS.get(normalised_text(summary))
    unmapped = known is None
    status, reason = known if known is not None else (PHASES.get(phase, Status.IN_TRANSIT), Reason.OTHER)
    local = local_time(str(event.get("eventDate") or ""), str(event.get("eventTime") or "00:00:00"))
    occurred_at, time_rule = place_local_time(local, "ES", None, context)
    office = str(event.get("codired") or "").strip()
    return MappedEvent(
        tracking_number=shipment_code,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=office or None,
        description=extended or summary,
        estimated_delivery=None,
        carrier_event_id=None,
        carrier_code=f"{phase}:{summary}" if phase else summary,
        carrier_status=extended or summary,
        unmapped=unmapped,
    )
