"""CTT Express (Spain): the JSON of CTT Express's shipment locator
(GET https://wct.cttexpress.com/p_track_redis.php?sc={shipping code}),
`{"error": null, "data": {"shipping_code", "committed_delivery_datetime",
"reported_delivery_date", "shipping_history": {"events": [{"code", "type",
"description", "event_date", "detail": {"item_event_datetime",
"item_event_text", "event_courier_code"}}]}}}`.

CTT Express has two unrelated code sets: statuses (`type` STATUS, four digits,
`0500` sometimes written `500`) and incidences (codes such as `6_INCT`). The
tables are keyed by set and normalised code, so a status code is never read as
an incidence. The time is the item's own (`detail.item_event_datetime`), else
the event's (`event_date`); both carry an offset. The estimate is the
committed delivery date, else the reported one, both plain dates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, parse_json
from api.inbound.adapters.estimates import promised_day
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "ctt_express"

# Status codes (events of `type` STATUS) with CTT Express's own names, as the
# locator's answers give them ("Pendiente de recepción en CTT Express", "En
# tránsito", "Entrega hoy" in mylittletracker's CTT test) and as a public CTT
# operations dashboard lists them (STATUS_LABELS: Manifestado ... Envío anulado).
# Keyed by the four-digit code.
STATUS_CODES: dict[str, tuple[Status, Reason | None]] = {
    "0000": (Status.LABEL_CREATED, None),  # manifestado, pendiente de recepción
    "0030": (Status.LABEL_CREATED, None),  # manifestado
    "0500": (Status.IN_TRANSIT, None),  # envío recogido
    "0600": (Status.EXCEPTION, Reason.OTHER),  # recogida fallida
    "0900": (Status.IN_TRANSIT, None),  # en tránsito
    "1000": (Status.IN_TRANSIT, None),  # delegación de tránsito, en tránsito
    "1200": (Status.IN_TRANSIT, None),  # delegación destino
    "1500": (Status.OUT_FOR_DELIVERY, None),  # en reparto, entrega hoy
    "1600": (Status.DELIVERY_ATTEMPTED, Reason.OTHER),  # reparto fallido
    "1700": (Status.EXCEPTION, Reason.OTHER),  # envío estacionado
    "1800": (Status.EXCEPTION, Reason.OTHER),  # estacionado ubicado
    "1900": (Status.IN_TRANSIT, None),  # pendiente de extracción
    "2000": (Status.DELIVERED, None),  # entregado
    "2100": (Status.DELIVERED, None),  # entregado
    "2300": (Status.AVAILABLE_FOR_PICKUP, None),  # disponible en Punto CTT
    "2400": (Status.DELIVERY_ATTEMPTED, Reason.OTHER),  # reparto fallido (incidencia)
    "2500": (Status.RETURNED_TO_SENDER, None),  # devolución en proceso, en devolución
    "2600": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # incidencia (dirección)
    "2700": (Status.EXCEPTION, Reason.RECIPIENT_UNAVAILABLE),  # incidencia (destinatario)
    "3000": (Status.CANCELLED, None),  # envío anulado
}

# Incidence codes (events of any other `type`), from the same dashboard. Keyed by code as written.
INCIDENCE_CODES: dict[str, tuple[Status, Reason | None]] = {
    "6_INCT": (Status.EXCEPTION, Reason.DAMAGED),  # daño detectado
    "71_INAT": (Status.IN_TRANSIT, None),  # nueva fecha de entrega: the shipment moves on
}

# The type of the status code set; an event of any other type is an incidence.
STATUS_TYPE = "STATUS"


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    if not isinstance(document, dict) or not ({"data", "error"} & document.keys()):
        raise PayloadError("a CTT Express answer is an object with `data` and `error`")
    answered = document.get("error")
    if answered not in (None, "", 0, False):
        said = f"{text(answered, 'code')}: {text(answered, 'message')}" if isinstance(answered, dict) else str(answered)
        return Adapted(events=[], errors=[ItemError(where="error", message=said[:500])])
    data = record(document, "data")
    number = text(data, "shipping_code")
    events_found = record(data, "shipping_history").get("events")
    if not number or not isinstance(events_found, list):
        return Adapted(
            events=[],
            errors=[ItemError(where="data", message="shipping_code and shipping_history.events are required")],
        )
    estimated = promised_day(text(data, "committed_delivery_datetime")) or promised_day(
        text(data, "reported_delivery_date")
    )
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for index, event in enumerate(events_found):
        try:
            events.append(map_event(number, event, estimated, context))
        except (ValueError, OverflowError) as error:
            errors.append(ItemError(where=f"data.shipping_history.events[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def record(parent: Any, field: str) -> dict[str, Any]:
    value = parent.get(field) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def text(parent: dict[str, Any], field: str) -> str:
    value = parent.get(field)
    if isinstance(value, bool):
        return ""
    return str(value).strip() if isinstance(value, str | int) else ""


def status_code(code: str) -> str:
    return code.zfill(4) if code.isdigit() else code


def map_event(number: str, event: Any, estimated: date | None, context: Context) -> MappedEvent:
    if not isinstance(event, dict):
        raise ValueError("an event must be an object")
    code, kind = text(event, "code"), text(event, "type").upper() or STATUS_TYPE
    if not code:
        raise ValueError("an event needs a code")
    table: dict[str, tuple[Status, Reason | None]] = STATUS_CODES if kind == STATUS_TYPE else INCIDENCE_CODES
    unmapped = (status_code(code) if kind == STATUS_TYPE else code.upper()) not in table
    if kind == STATUS_TYPE:
        status, reason = STATUS_CODES.get(status_code(code), (Status.IN_TRANSIT, Reason.OTHER))
    else:
        # An incidence the table does not know is still an incidence: an exception, reason other.
        status, reason = INCIDENCE_CODES.get(code.upper(), (Status.EXCEPTION, Reason.OTHER))
    detail = record(event, "detail")
    stamp = text(detail, "item_event_datetime") or text(event, "event_date")
    if not stamp:
        raise ValueError("detail.item_event_datetime or event_date is required")
    occurred_at, time_rule = place_local_time(datetime.fromisoformat(stamp), "ES", None, context)
    description = text(event, "description")
    courier_text = text(detail, "item_event_text")
    said = courier_text if courier_text and courier_text.lower() != "null" else ""
    return MappedEvent(
        tracking_number=number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=None,
        description=f"{description} ({said})" if said else description,
        estimated_delivery=estimated,
        carrier_event_id=None,
        carrier_code=f"{kind}:{code}",
        carrier_status=description,
        unmapped=unmapped,
    )
