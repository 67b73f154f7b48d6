"""What the pages say, in English and Spanish: every status and reason, and the
pages' own words. The language is the first of the two the browser prefers."""

from __future__ import annotations

from domain.status import Reason, Status

LANGUAGES = ("en", "es")

STATUS: dict[str, dict[Status, str]] = {
    "en": {
        Status.LABEL_CREATED: "Label created: the sender is preparing your parcel",
        Status.IN_TRANSIT: "On its way",
        Status.OUT_FOR_DELIVERY: "Out for delivery today",
        Status.DELIVERY_ATTEMPTED: "We tried to deliver it",
        Status.AVAILABLE_FOR_PICKUP: "Ready for you to pick up",
        Status.EXCEPTION: "Held up",
        Status.DELIVERED: "Delivered",
        Status.RETURNED_TO_SENDER: "Returned to the sender",
        Status.CANCELLED: "Cancelled",
    },
    "es": {
        Status.LABEL_CREATED: "Etiqueta creada: el remitente está preparando su paquete",
        Status.IN_TRANSIT: "En camino",
        Status.OUT_FOR_DELIVERY: "En reparto hoy",
        Status.DELIVERY_ATTEMPTED: "Intentamos entregarlo",
        Status.AVAILABLE_FOR_PICKUP: "Listo para recoger",
        Status.EXCEPTION: "Retenido",
        Status.DELIVERED: "Entregado",
        Status.RETURNED_TO_SENDER: "Devuelto al remitente",
        Status.CANCELLED: "Cancelado",
    },
}

REASON: dict[str, dict[Reason, str]] = {
    "en": {
        Reason.ADDRESS_ISSUE: "a problem with the address",
        Reason.RECIPIENT_UNAVAILABLE: "nobody was there to receive it",
        Reason.REFUSED: "it was refused",
        Reason.CUSTOMS: "it is in customs",
        Reason.DAMAGED: "it was damaged",
        Reason.LOST: "it is lost",
        Reason.WEATHER: "the weather",
        Reason.CARRIER_DELAY: "a delay at the carrier",
        Reason.OTHER: "another reason",
    },
    "es": {
        Reason.ADDRESS_ISSUE: "un problema con la dirección",
        Reason.RECIPIENT_UNAVAILABLE: "no había nadie para recibirlo",
        Reason.REFUSED: "fue rechazado",
        Reason.CUSTOMS: "está en la aduana",
        Reason.DAMAGED: "sufrió daños",
        Reason.LOST: "se ha perdido",
        Reason.WEATHER: "el tiempo",
        Reason.CARRIER_DELAY: "un retraso del transportista",
        Reason.OTHER: "otro motivo",
    },
}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Where is my parcel?",
        "from": "From {shipper}, carried by {carrier}",
        "tracking": "Tracking number",
        "arrives_by": "Arrives by {when}",
        "arrives_between": "Arrives between {start} and {end}",
        "delivered_at": "Delivered on {when}",
        "estimate": "The carrier now expects it by {when}",
        "late": "Late: it was promised by {when}. We are sorry.",
        "at_risk": "At risk: the carrier's estimate is after the promised time.",
        "why": "Why: {reason}",
        "timeline": "What has happened",
        "no_events": "Nothing yet: the carrier has not scanned it.",
        "live": "This page updates by itself.",
        "offline": "Not updating: reconnecting…",
        "rate": "How was your delivery? Tell us",
        "times_in": "Times are in {zone}.",
        "unknown": "We could not find this tracking link. Please check that the whole link was copied.",
        "expired": "This tracking link has expired.",
    },
    "es": {
        "title": "¿Dónde está mi paquete?",
        "from": "De {shipper}, transportado por {carrier}",
        "tracking": "Número de seguimiento",
        "arrives_by": "Llega antes del {when}",
        "arrives_between": "Llega entre el {start} y el {end}",
        "delivered_at": "Entregado el {when}",
        "estimate": "El transportista ahora lo espera antes del {when}",
        "late": "Con retraso: estaba prometido para el {when}. Lo sentimos.",
        "at_risk": "En riesgo: la estimación del transportista es posterior a la hora prometida.",
        "why": "Motivo: {reason}",
        "timeline": "Qué ha pasado",
        "no_events": "Todavía nada: el transportista aún no lo ha escaneado.",
        "live": "Esta página se actualiza sola.",
        "offline": "Sin actualizar: reconectando…",
        "rate": "¿Qué tal fue la entrega? Cuéntenoslo",
        "times_in": "Horas en {zone}.",
        "unknown": "No encontramos este enlace de seguimiento. Compruebe que lo ha copiado entero.",
        "expired": "Este enlace de seguimiento ha caducado.",
    },
}

WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
}
MONTHS = {
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    "es": [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
}

# the board's and the console's words for a status: short, for a table on a busy desk
DESK_STATUS: dict[str, str] = {
    Status.LABEL_CREATED: "Label created",
    Status.IN_TRANSIT: "In transit",
    Status.OUT_FOR_DELIVERY: "Out for delivery",
    Status.DELIVERY_ATTEMPTED: "Delivery attempted",
    Status.AVAILABLE_FOR_PICKUP: "Ready for pickup",
    Status.EXCEPTION: "Exception",
    Status.DELIVERED: "Delivered",
    Status.RETURNED_TO_SENDER: "Returned to sender",
    Status.CANCELLED: "Cancelled",
}
DESK_REASON: dict[str, str] = {reason: REASON["en"][reason] for reason in Reason}


# a case's type and priority on the desk (the reasons' words would read oddly: "it is lost")
DESK_CASE: dict[str, str] = {
    "delay": "Delay",
    "damage": "Damage",
    "lost": "Lost",
    "address_issue": "Address issue",
    "complaint": "Complaint",
    "other": "Other",
    "low": "Low",
    "normal": "Normal",
    "high": "High",
    "urgent": "Urgent",
}


def case_word(value: object) -> str:
    """A case type or priority (value or enum) as the desk reads it."""
    text = str(value.value) if hasattr(value, "value") else str(value)
    return DESK_CASE.get(text) or text.replace("_", " ")


def desk_word(value: object) -> str:
    """A status or reason value (or enum) as the desk reads it; anything else as it is."""
    text = str(value.value) if hasattr(value, "value") else str(value)
    return DESK_STATUS.get(text) or DESK_REASON.get(text) or text.replace("_", " ")
