"""DHL Express: the XML Services tracking answer (`TrackingResponse` of
TrackingResponse.xsd, to a KnownTrackingRequest), one `AWBInfo` per waybill,
its `ShipmentInfo` holding `ShipmentEvent`s of `Date`, `Time`,
`ServiceEvent/EventCode`, `ServiceEvent/Description`, `Signatory` and
`ServiceArea` (`ServiceAreaCode`, `Description`).

Event times are local to the service area and carry no offset: they are
placed in the zone of the service area's country (and state, for the United
States and Canada), read from its description (`Barcelona - Spain`,
`SPRINGFIELD GARDENS,NY-USA`), else in the account's zone. The estimate is
`EstDlvyDate`, an end-of-day local time with its offset
(`2021-05-07 23:59:00 GMT-04:00`); `EstDlvyDateUTC`, the same instant in UTC,
names the next day and is not used. `DP` is not a DHL Express code this table
knows: the same two letters mean "departed" at UPS and FedEx.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import date, datetime

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, parse_xml
from api.inbound.adapters.estimates import promised_day
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "dhl_express"

# DHL Express checkpoint (ServiceEvent) codes, as DHL's XML Services reference
# data lists them ("Tracking checkpoint codes"), plus PO ("Departing origin") and
# RW (re-weighed) seen in DHL's sample answers (karrio's dhl_express tracking
# tests). Keyed by upper-case code.
CODES: dict[str, tuple[Status, Reason | None]] = {
    "SD": (Status.LABEL_CREATED, None),  # shipment information received
    "PU": (Status.IN_TRANSIT, None),  # shipment picked up
    "SA": (Status.IN_TRANSIT, None),  # shipment acceptance
    "PO": (Status.IN_TRANSIT, None),  # departing origin
    "RW": (Status.IN_TRANSIT, None),  # re-weighed
    "PL": (Status.IN_TRANSIT, None),  # processed at location
    "AF": (Status.IN_TRANSIT, None),  # arrived at facility
    "DF": (Status.IN_TRANSIT, None),  # departed facility
    "AR": (Status.IN_TRANSIT, None),  # arrival in delivery facility
    "TR": (Status.IN_TRANSIT, None),  # record of transfer
    "SM": (Status.IN_TRANSIT, None),  # scheduled movement
    "FD": (Status.IN_TRANSIT, None),  # forward destination, delivery details expected
    "TP": (Status.IN_TRANSIT, None),  # forwarded to a third party, no delivery details
    "AD": (Status.IN_TRANSIT, None),  # agreed delivery
    "EM": (Status.IN_TRANSIT, None),  # electronic data merge
    "SC": (Status.IN_TRANSIT, None),  # state changed
    "CS": (Status.IN_TRANSIT, None),  # closed shipment
    "RR": (Status.IN_TRANSIT, None),  # response received
    "IC": (Status.IN_TRANSIT, None),  # in clearance processing
    "BN": (Status.IN_TRANSIT, None),  # customer broker notified
    "BR": (Status.IN_TRANSIT, None),  # broker release
    "CR": (Status.IN_TRANSIT, None),  # clearance release
    "PY": (Status.IN_TRANSIT, None),  # payment
    "WC": (Status.OUT_FOR_DELIVERY, None),  # with delivering courier
    "OK": (Status.DELIVERED, None),  # delivery
    "DD": (Status.DELIVERED, Reason.DAMAGED),  # delivered damaged
    "PD": (Status.EXCEPTION, Reason.OTHER),  # partial delivery: the rest is still on its way
    "CC": (Status.AVAILABLE_FOR_PICKUP, None),  # awaiting consignee collection
    "NH": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # not home
    "CA": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # closed on arrival
    "ND": (Status.DELIVERY_ATTEMPTED, Reason.OTHER),  # not delivered
    "MD": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # missed delivery cycle
    "MS": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # mis-sort
    "MC": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # miscode
    "BA": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # bad address
    "CM": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # customer moved
    "RD": (Status.EXCEPTION, Reason.REFUSED),  # refused delivery
    "CD": (Status.EXCEPTION, Reason.CUSTOMS),  # controllable clearance delay
    "UD": (Status.EXCEPTION, Reason.CUSTOMS),  # uncontrollable clearance delay
    "HP": (Status.EXCEPTION, Reason.CUSTOMS),  # held for payment (duties and taxes)
    "OH": (Status.EXCEPTION, Reason.OTHER),  # on hold
    "SS": (Status.EXCEPTION, Reason.OTHER),  # shipment stopped
    "DS": (Status.EXCEPTION, Reason.LOST),  # destroyed / disposal
    "RT": (Status.RETURNED_TO_SENDER, None),  # returned to consignor
}

# DHL Express has no category of its own: an unknown code is in transit, reason other.
UNKNOWN: tuple[Status, Reason | None] = (Status.IN_TRANSIT, Reason.OTHER)

# Country names and ISO alpha-3 codes as service area descriptions end, for the
# countries whose zones are known and their neighbours on DHL's lanes.
COUNTRIES: dict[str, str] = {
    "SPAIN": "ES",
    "ESP": "ES",
    "PORTUGAL": "PT",
    "PRT": "PT",
    "GERMANY": "DE",
    "DEU": "DE",
    "USA": "US",
    "UNITED STATES": "US",
    "UNITED STATES OF AMERICA": "US",
    "CANADA": "CA",
    "CAN": "CA",
    "FRANCE": "FR",
    "FRA": "FR",
    "ITALY": "IT",
    "ITA": "IT",
    "NETHERLANDS": "NL",
    "NLD": "NL",
    "BELGIUM": "BE",
    "BEL": "BE",
    "UNITED KINGDOM": "GB",
    "GBR": "GB",
    "MEXICO": "MX",
    "MEX": "MX",
    "HONG KONG": "HK",
    "HKG": "HK",
    "SINGAPORE": "SG",
    "SGP": "SG",
    "JAMAICA": "JM",
    "JAM": "JM",
}


def local_name(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for candidate in element:
        if local_name(candidate) == name:
            return candidate
    return None


def child_text(element: ElementTree.Element | None, name: str) -> str:
    found = child(element, name) if element is not None else None
    return (found.text or "").strip() if found is not None else ""


def adapt(payload: bytes, context: Context) -> Adapted:
    root = parse_xml(payload)
    if local_name(root) != "TrackingResponse":
        condition = next((element for element in root.iter() if local_name(element) == "Condition"), None)
        said = (
            f": {child_text(condition, 'ConditionCode')} {child_text(condition, 'ConditionData')}"
            if condition is not None
            else ""
        )
        raise PayloadError(f"not a DHL Express TrackingResponse ({local_name(root) or 'no root'}){said}")
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    waybills = [element for element in root if local_name(element) == "AWBInfo"]
    for waybill_index, waybill in enumerate(waybills):
        where = f"AWBInfo[{waybill_index}]"
        number = child_text(waybill, "AWBNumber")
        status = child(waybill, "Status")
        action = child_text(status, "ActionStatus")
        if action and action.lower() != "success":
            condition = child(status, "Condition") if status is not None else None
            said = " ".join(
                part
                for part in (child_text(condition, "ConditionCode"), child_text(condition, "ConditionData"))
                if part
            )
            errors.append(ItemError(where=where, message=f"{action}: {said}" if said else action))
            continue
        info = child(waybill, "ShipmentInfo")
        if not number or info is None:
            errors.append(ItemError(where=where, message="AWBNumber and ShipmentInfo are required"))
            continue
        estimated = estimated_delivery(info)
        shipment_events = [element for element in info if local_name(element) == "ShipmentEvent"]
        for index, shipment_event in enumerate(shipment_events):
            try:
                events.append(map_event(number, shipment_event, estimated, context))
            except (ValueError, OverflowError) as error:
                errors.append(ItemError(where=f"{where}/ShipmentEvent[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def estimated_delivery(info: ElementTree.Element) -> date | None:
    # `2021-05-07 23:59:00 GMT-04:00`: the date is written in the destination's own offset.
    text = child_text(info, "EstDlvyDate").replace(" GMT", "")
    return promised_day(text.replace(" ", "T", 1)) if text else None


def service_area_place(description: str) -> tuple[str | None, str | None]:
    """The country and the state a service area's description names: `Barcelona - Spain`,
    `KINGSTON-JAM`, `SPRINGFIELD GARDENS,NY-USA`."""
    head, separator, tail = description.rpartition("-")
    if not separator:
        return None, None
    country = COUNTRIES.get(" ".join(tail.split()).upper())
    region = head.rpartition(",")[2].strip() if "," in head else None
    return country, region


def map_event(
    number: str, shipment_event: ElementTree.Element, estimated: date | None, context: Context
) -> MappedEvent:
    service_event = child(shipment_event, "ServiceEvent")
    code = child_text(service_event, "EventCode")
    if not code:
        raise ValueError("ServiceEvent/EventCode is required")
    description = " ".join(child_text(service_event, "Description").split())
    unmapped = code.upper() not in CODES
    status, reason = CODES.get(code.upper(), UNKNOWN)
    day, time = child_text(shipment_event, "Date"), child_text(shipment_event, "Time")
    if not day:
        raise ValueError("Date is required")
    local = datetime.fromisoformat(f"{day}T{time or '00:00:00'}")
    area = child(shipment_event, "ServiceArea")
    area_description = " ".join(child_text(area, "Description").split())
    country, region = service_area_place(area_description)
    occurred_at, time_rule = place_local_time(local, country, region, context)
    return MappedEvent(
        tracking_number=number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=area_description or child_text(area, "ServiceAreaCode") or None,
        description=description,
        estimated_delivery=estimated,
        carrier_event_id=None,
        carrier_code=code,
        carrier_status=description,
        unmapped=unmapped,
    )
