"""Correos Express (Spain): the JSON of the shipment tracking web service
(POST https://www.cexpr.es/wspsc/apiRestSeguimientoEnviosk8s/json/seguimientoEnvio),
`{"error", "mensajeError", "numEnvio", "codEstado", "descEstado", "fechaEstado",
"horaEstado", "codIncEstado", "descIncEstado", "estadoEnvios": [{"codEstado",
"descEstado", "fechaEstado", "horaEstado", "codIncEstado", "descIncEstado",
"idDelegacion", "nombreDelegacion"}]}`, or a list of such answers.

Some answers repeat the `estadoEnvios` key once per event instead of holding a
list (the shape an XML-to-JSON conversion of repeated elements gives): a
parser that builds a plain object keeps only the last event, so the body is
read with every repeated key kept, in order. `fechaEstado` is `DDMMYYYY` and
`horaEstado` `HHMMSS`, Spanish local time without offset (`dd/mm/yyyy` and
`hh:mm:ss` are read too). `error` other than 0 answers for that shipment only.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import date, datetime, time
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "correos_express"

# `codEstado`, the state codes of Correos Express's tracking service as its
# schema's `historicoEstados` lists them (reproduced in public integrations of
# the SOAP and REST services) and as a live answer shows them (1 SIN RECEPCION,
# 4 TRANSITO, 6 DELEGACION DESTINO, 8 EN REPARTO, 12 ENTREGADO). Keyed by the
# code without leading zeros.
CODES: dict[str, tuple[Status, Reason | None]] = {
    "1": (Status.LABEL_CREATED, None),  # pendiente de recepción / sin recepción
    "2": (Status.IN_TRANSIT, None),  # en arrastre (collected, on its way to the network)
    "4": (Status.IN_TRANSIT, None),  # tránsito
    "6": (Status.IN_TRANSIT, None),  # delegación destino
    "8": (Status.OUT_FOR_DELIVERY, None),  # en reparto
    "9": (Status.DELIVERY_ATTEMPTED, Reason.OTHER),  # reparto fallido (incidencia: descIncEstado says why)
    "11": (Status.OUT_FOR_DELIVERY, None),  # nuevo reparto (after an incidence)
    "12": (Status.DELIVERED, None),  # entregado
}

# State texts (`descEstado`) Correos Express answers with, for a code the table
# does not know; they keep reason other, so that the unlisted code is seen.
# Keyed by the text in lower case without accents.
TEXTS: dict[str, Status] = {
    "depositado en oficina": Status.AVAILABLE_FOR_PICKUP,
    "reparto fallido": Status.DELIVERY_ATTEMPTED,
    "devuelto": Status.RETURNED_TO_SENDER,
    "en devolucion": Status.RETURNED_TO_SENDER,
    "anulado": Status.CANCELLED,
    "destruido": Status.EXCEPTION,
    "paralizado": Status.EXCEPTION,
    "almacen estacionado": Status.EXCEPTION,
}

# Incidence texts (`descIncEstado`) whose reason is plain; any other incidence is reason other.
INCIDENCES: dict[str, Reason] = {
    "ausente": Reason.RECIPIENT_UNAVAILABLE,
    "direccion incorrecta": Reason.ADDRESS_ISSUE,
    "rehusado": Reason.REFUSED,
}

# Statuses an incidence's reason may say more about.
REASONED = frozenset({Status.EXCEPTION, Status.DELIVERY_ATTEMPTED})


class Repeated(list[Any]):
    """The values of a key that an object repeats, in order."""


def keep_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key not in document:
            document[key] = value
        elif isinstance(document[key], Repeated):
            document[key].append(value)
        else:
            document[key] = Repeated([document[key], value])
    return document


def normalised(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(plain.lower().split()).rstrip(".")


def adapt(payload: bytes, context: Context) -> Adapted:
    try:
        document = json.loads(payload, object_pairs_hook=keep_repeated_keys)
    except (ValueError, RecursionError) as error:
        raise PayloadError(f"not JSON: {error}") from None
    if isinstance(document, dict):
        answers: list[Any] = [document]
    elif isinstance(document, list) and document:
        answers = document
    else:
        raise PayloadError("a Correos Express answer is an object, or a list of them")
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for answer_index, answer in enumerate(answers):
        where = f"[{answer_index}]"
        if not isinstance(answer, dict):
            errors.append(ItemError(where=where, message="an answer must be an object"))
            continue
        failed = answer.get("error")
        if failed not in (None, 0, "0", ""):
            errors.append(ItemError(where=where, message=f"{failed}: {text(answer, 'mensajeError')}"))
            continue
        number = text(answer, "numEnvio")
        if not number:
            errors.append(ItemError(where=where, message="numEnvio is required"))
            continue
        for index, event in enumerate(state_events(answer.get("estadoEnvios"))):
            try:
                events.append(map_event(number, event, context))
            except ValueError as error:
                errors.append(ItemError(where=f"{where}.estadoEnvios[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def state_events(value: Any) -> list[Any]:
    """The events however the answer holds them: a list, one object, or a key repeated per event."""
    if isinstance(value, Repeated):
        return [event for item in value for event in (item if isinstance(item, list) else [item])]
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    if isinstance(value, bool) or value is None:
        return ""
    return str(value).strip() if isinstance(value, str | int) else ""


def cex_date(value: str) -> date:
    digits = value.replace("/", "").replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        raise ValueError(f"fechaEstado {value!r} is not DDMMYYYY")
    return date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))


def cex_time(value: str) -> time:
    digits = value.replace(":", "")
    if not digits:
        return time(0, 0)
    if len(digits) not in (4, 6) or not digits.isdigit():
        raise ValueError(f"horaEstado {value!r} is not HHMMSS")
    return time(int(digits[:2]), int(digits[2:4]), int(digits[4:] or 0))


def map_event(number: str, event: Any, context: Context) -> MappedEvent:
    if not isinstance(event, dict):
        raise ValueError("an event must be an object")
    code = text(event, "codEstado")
    state = text(event, "descEstado")
    if not code and not state:
        raise ValueError("an event needs a codEstado or a descEstado")
    known = CODES.get(code.lstrip("0") or code)
    unmapped = known is None
    if known is not None:
        status, reason = known
    else:
        status, reason = TEXTS.get(normalised(state), Status.IN_TRANSIT), Reason.OTHER
    incidence_code, incidence = text(event, "codIncEstado"), text(event, "descIncEstado")
    if status in REASONED and incidence:
        reason = INCIDENCES.get(normalised(incidence), reason)
    local = datetime.combine(cex_date(text(event, "fechaEstado")), cex_time(text(event, "horaEstado")))
    occurred_at, time_rule = place_local_time(local, "ES", None, context)
    description = f"{state}: {incidence}" if incidence else state
    return MappedEvent(
        tracking_number=number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=text(event, "nombreDelegacion") or text(event, "idDelegacion") or None,
        description=description,
        estimated_delivery=None,
        carrier_event_id=None,
        carrier_code=f"{code}/{incidence_code}" if incidence_code else code,
        carrier_status=description,
        unmapped=unmapped,
    )
