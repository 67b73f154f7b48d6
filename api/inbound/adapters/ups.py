"""UPS: the Track API answer (GET /api/track/v1/details/{inquiryNumber}),
`{"trackResponse": {"shipment": [{"inquiryNumber", "package": [{"trackingNumber",
"activity": [{"date", "time", "gmtDate", "gmtTime", "gmtOffset", "location":
{"address": {...}}, "status": {"type", "code", "description", "statusCode"}}],
"currentStatus", "deliveryDate": [{"date", "type"}]}], "warnings"}]}}`.

`status.type` is UPS's own category; `status.code`, two characters, says what
happened. `date` (`YYYYMMDD`) and `time` (`HHMMSS`) are local to the activity
and carry no offset: a `gmtOffset` given with the activity wins, else the time
is placed in the zone of the activity's state or country, else the account's.
The estimate is the rescheduled delivery date (`RDD`) when there is one, else
the scheduled one (`SDD`); the delivered date (`DEL`) is not an estimate.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, TimeRule, parse_json
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "ups"

# Activity status codes. UPS publishes the list only behind its developer portal
# login ("there is a list of these codes ... elsewhere on this portal",
# UPSTrackAlertEnhanced.yaml in UPS-API/api-documentation); SR, OT and FS are
# in UPS's own OpenAPI examples (Tracking.yaml, UPSTrackAlert.yaml), the others
# are codes with UPS's own texts as public integrations log them. Keyed by
# upper-case code; a code not here takes its `status.type`.
CODES: dict[str, tuple[Status, Reason | None]] = {
    "MP": (Status.LABEL_CREATED, None),  # shipper created a label, UPS has not received the package yet
    "PU": (Status.IN_TRANSIT, None),  # pickup scan
    "OR": (Status.IN_TRANSIT, None),  # origin scan
    "AR": (Status.IN_TRANSIT, None),  # arrived at facility
    "DP": (Status.IN_TRANSIT, None),  # departed from facility
    "DS": (Status.IN_TRANSIT, None),  # destination scan
    "IP": (Status.IN_TRANSIT, None),  # import scan
    "SR": (Status.IN_TRANSIT, None),  # your package was released by the customs agency
    "OT": (Status.OUT_FOR_DELIVERY, None),  # out for delivery today
    "OF": (Status.OUT_FOR_DELIVERY, None),  # out for delivery
    "48": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # the receiver was not available
    "55": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # the receiving business was closed
    "G3": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # tried the business, it was closed
    "5R": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # not available; to an Access Point
    "AG": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # the address is incomplete
    "AD": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # the company or receiver name is incorrect
    "A7": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # the receiver has moved
    "KR": (Status.EXCEPTION, Reason.REFUSED),  # the receiver refused the delivery
    "34": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # we've incorrectly sorted this package
    "UP": (Status.EXCEPTION, Reason.LOST),  # we've begun an investigation to locate the package
    "UF": (Status.RETURNED_TO_SENDER, Reason.OTHER),  # we're returning this package to the sender
    "6C": (Status.RETURNED_TO_SENDER, Reason.RECIPIENT_UNAVAILABLE),  # Access Point hold expired; returned
    "AY": (Status.RETURNED_TO_SENDER, Reason.RECIPIENT_UNAVAILABLE),  # closed at the final attempt; returned
    "ZP": (Status.AVAILABLE_FOR_PICKUP, None),  # delivered to a UPS Access Point, awaiting pickup
    "2Q": (Status.AVAILABLE_FOR_PICKUP, None),  # delivered to a UPS Access Point
    "5G": (Status.AVAILABLE_FOR_PICKUP, None),  # remains at the Access Point, nearing the hold limit
    "2W": (Status.DELIVERED, None),  # picked up at the UPS Access Point
    "FS": (Status.DELIVERED, None),  # delivered
    "KB": (Status.DELIVERED, None),  # delivered
    "KM": (Status.DELIVERED, None),  # delivered
    "KD": (Status.DELIVERED, None),  # delivered
    "KE": (Status.DELIVERED, None),  # delivered
    "9E": (Status.DELIVERED, None),  # delivered
    "DL": (Status.DELIVERED, None),  # delivered
}

# `status.type`, UPS's category (the Track API's activity status types: D, I, M,
# MV, P, X, RS, DO, DD, W, NA, O; U from UPSTrackAlertEnhanced.yaml). DO and DD
# are freight deliveries to a container freight station, not to the receiver.
TYPES: dict[str, Status] = {
    "M": Status.LABEL_CREATED,  # billing information received
    "MV": Status.CANCELLED,  # billing information voided
    "P": Status.IN_TRANSIT,  # pickup
    "I": Status.IN_TRANSIT,  # in transit
    "U": Status.IN_TRANSIT,  # update, usually of the scheduled delivery
    "W": Status.IN_TRANSIT,  # warehousing (freight)
    "DO": Status.IN_TRANSIT,  # delivered origin CFS (freight)
    "DD": Status.IN_TRANSIT,  # delivered destination CFS (freight)
    "NA": Status.IN_TRANSIT,  # not available
    "O": Status.OUT_FOR_DELIVERY,  # out for delivery
    "X": Status.EXCEPTION,  # exception
    "D": Status.DELIVERED,  # delivered
    "RS": Status.RETURNED_TO_SENDER,  # returned to shipper
}


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    answer = record(document, "trackResponse") if isinstance(document, dict) else {}
    shipments = answer.get("shipment")
    if not isinstance(shipments, list):
        errors = record(document, "response").get("errors") if isinstance(document, dict) else None
        if isinstance(errors, list) and errors:
            said = "; ".join(
                f"{text(error, 'code')}: {text(error, 'message')}" for error in errors if isinstance(error, dict)
            )
            raise PayloadError(f"UPS answered an error: {said}")
        raise PayloadError("a UPS answer has a `trackResponse.shipment` list")
    events: list[MappedEvent] = []
    errors_found: list[ItemError] = []
    for shipment_index, shipment in enumerate(shipments):
        where = f"trackResponse.shipment[{shipment_index}]"
        packages = shipment.get("package") if isinstance(shipment, dict) else None
        if not isinstance(packages, list):
            warnings = shipment.get("warnings") if isinstance(shipment, dict) else None
            said = "; ".join(
                f"{text(warning, 'code')}: {text(warning, 'message')}"
                for warning in (warnings if isinstance(warnings, list) else [])
                if isinstance(warning, dict)
            )
            errors_found.append(ItemError(where=where, message=said or "a shipment needs a package list"))
            continue
        for package_index, package in enumerate(packages):
            package_where = f"{where}.package[{package_index}]"
            number = text(package, "trackingNumber") if isinstance(package, dict) else ""
            activities = package.get("activity") if isinstance(package, dict) else None
            if not isinstance(package, dict) or not number or not isinstance(activities, list):
                errors_found.append(ItemError(where=package_where, message="trackingNumber and activity are required"))
                continue
            estimated = estimated_delivery(package)
            for index, activity in enumerate(activities):
                try:
                    events.append(map_activity(number, activity, estimated, context))
                except (ValueError, OverflowError) as error:
                    errors_found.append(ItemError(where=f"{package_where}.activity[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors_found)


def record(parent: Any, field: str) -> dict[str, Any]:
    value = parent.get(field) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def text(parent: dict[str, Any], field: str) -> str:
    value = parent.get(field)
    return value.strip() if isinstance(value, str) else ""


def ups_date(value: str) -> date:
    if len(value) != 8 or not value.isdigit():
        raise ValueError(f"date {value!r} is not YYYYMMDD")
    return date(int(value[:4]), int(value[4:6]), int(value[6:]))


def ups_time(value: str) -> time:
    # HHMMSS; UPS's own examples also show a time without its leading zero (`74700`).
    if not 1 <= len(value) <= 6 or not value.isdigit():
        raise ValueError(f"time {value!r} is not HHMMSS")
    padded = value.zfill(6)
    return time(int(padded[:2]), int(padded[2:4]), int(padded[4:]))


def estimated_delivery(package: dict[str, Any]) -> date | None:
    dates = package.get("deliveryDate")
    by_type: dict[str, date] = {}
    for entry in dates if isinstance(dates, list) else []:
        if isinstance(entry, dict):
            try:
                by_type[text(entry, "type").upper()] = ups_date(text(entry, "date"))
            except ValueError:
                continue
    return by_type.get("RDD") or by_type.get("SDD")


def map_activity(number: str, activity: Any, estimated: date | None, context: Context) -> MappedEvent:
    if not isinstance(activity, dict):
        raise ValueError("an activity must be an object")
    status_record = record(activity, "status")
    code, kind = text(status_record, "code").upper(), text(status_record, "type").upper()
    if not code and not kind:
        raise ValueError("an activity needs a status code or type")
    known = CODES.get(code)
    unmapped = known is None
    status, reason = known if known is not None else (TYPES.get(kind, Status.IN_TRANSIT), Reason.OTHER)
    local = datetime.combine(ups_date(text(activity, "date")), ups_time(text(activity, "time") or "000000"))
    address = record(record(activity, "location"), "address")
    country = text(address, "countryCode") or text(address, "country")
    state = text(address, "stateProvince")
    offset = text(activity, "gmtOffset")
    if offset:
        occurred_at, time_rule = datetime.fromisoformat(f"{local.isoformat()}{offset}"), TimeRule.OFFSET
    else:
        occurred_at, time_rule = place_local_time(local, country, state, context)
    place = ", ".join(part for part in (text(address, "city"), state, text(address, "postalCode"), country) if part)
    description = text(status_record, "description")
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
        carrier_code=f"{kind}:{code}",
        carrier_status=description,
        unmapped=unmapped,
    )
