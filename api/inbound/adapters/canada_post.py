"""Canada Post: the XML `tracking-detail` of the Tracking web service
(GET /vis/track/pin/{pin}/detail), one `occurrence` per event under
`significant-events`.

Codes arrive zero-padded or not (`0174`, `174`): the table is keyed by the
code without leading zeros. Times carry a zone abbreviation (`EST`) rather than
an offset; an abbreviation not in ZONE_OFFSETS falls back to the province's zone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import date, datetime

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, TimeRule, parse_xml
from api.inbound.adapters.zones import fixed_zone, place_local_time
from domain.status import Reason, Status

SOURCE = "canada_post"

# Checked against Canada Post's tracking detail sample (the `significant-events`
# of the developer documentation's "Get Tracking Details" example, reproduced in
# karrio's canadapost tests) and the delivered codes karrio lists in
# canadapost/units.py TRACKING_DELIVERED_EVENT_CODES. Keyed by code without
# leading zeros.
CODES: dict[str, tuple[Status, Reason | None]] = {
    "20": (Status.IN_TRANSIT, None),  # signature image recorded for online viewing: informational
    "100": (Status.IN_TRANSIT, None),  # item processed at postal facility
    "173": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # customer addressing error found; possible delay
    "174": (Status.OUT_FOR_DELIVERY, None),  # item out for delivery
    **dict.fromkeys(
        [
            "1408",
            "1409",
            "1421",
            "1422",
            "1423",
            "1424",
            "1425",
            "1426",
            "1427",
            "1428",
            "1429",
            "1430",
            "1431",
            "1432",
            "1433",
            "1434",
            "1441",
            "1442",
            "1496",
            "1497",
            "1498",
            "1499",
        ],
        (Status.DELIVERED, None),
    ),
}

# Canada Post has no category of its own: an unknown code is in transit, reason other.
UNKNOWN: tuple[Status, Reason | None] = (Status.IN_TRANSIT, Reason.OTHER)

# The abbreviations Canada Post writes in `event-time-zone`, as fixed offsets.
ZONE_OFFSETS: dict[str, float] = {
    "NST": -3.5,
    "NDT": -2.5,
    "AST": -4,
    "ADT": -3,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
}


def normalised_code(code: str) -> str:
    return code.strip().lstrip("0") or "0"


def local_name(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def child_text(element: ElementTree.Element, name: str) -> str:
    for child in element:
        if local_name(child) == name:
            return (child.text or "").strip()
    return ""


def children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element.iter() if local_name(child) == name]


def adapt(payload: bytes, context: Context) -> Adapted:
    root = parse_xml(payload)
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for detail_index, detail in enumerate(children(root, "tracking-detail")):
        pin = child_text(detail, "pin")
        estimated = estimated_delivery(detail)
        for index, occurrence in enumerate(children(detail, "occurrence")):
            where = f"tracking-detail[{detail_index}]/occurrence[{index}]"
            try:
                events.append(map_occurrence(pin, occurrence, estimated, context))
            except ValueError as error:
                errors.append(ItemError(where=where, message=str(error)))
    return Adapted(events=events, errors=errors)


def estimated_delivery(detail: ElementTree.Element) -> date | None:
    # A changed date, when there is one, replaces the expected one.
    for name in ("changed-expected-date", "expected-delivery-date"):
        text = child_text(detail, name)
        if text:
            try:
                return date.fromisoformat(text)
            except ValueError:
                continue
    return None


def map_occurrence(pin: str, occurrence: ElementTree.Element, estimated: date | None, context: Context) -> MappedEvent:
    if not pin:
        raise ValueError("no pin on the tracking detail")
    code = child_text(occurrence, "event-identifier")
    if not code:
        raise ValueError("no event-identifier")
    description = child_text(occurrence, "event-description")
    unmapped = normalised_code(code) not in CODES
    status, reason = CODES.get(normalised_code(code), UNKNOWN)
    site = child_text(occurrence, "event-site")
    province = child_text(occurrence, "event-province")
    local = datetime.fromisoformat(f"{child_text(occurrence, 'event-date')}T{child_text(occurrence, 'event-time')}")
    zone = child_text(occurrence, "event-time-zone").upper()
    if local.tzinfo is None and zone in ZONE_OFFSETS:
        occurred_at, time_rule = local.replace(tzinfo=fixed_zone(ZONE_OFFSETS[zone])), TimeRule.SOURCE_ZONE
    else:
        occurred_at, time_rule = place_local_time(local, "CA", province, context)
    return MappedEvent(
        tracking_number=pin,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=", ".join(part for part in (site, province) if part) or None,
        description=description,
        estimated_delivery=estimated,
        carrier_event_id=None,
        carrier_code=code,
        carrier_status=description,
        unmapped=unmapped,
    )
