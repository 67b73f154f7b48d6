"""FedEx: the Track API answer (POST /track/v1/trackingnumbers),
`{"output": {"completeTrackResults": [{"trackingNumber", "trackResults":
[{"trackingNumberInfo", "latestStatusDetail", "dateAndTimes": [{"type",
"dateTime"}], "scanEvents": [{"date", "eventType", "eventDescription",
"exceptionCode", "exceptionDescription", "scanLocation", "derivedStatusCode",
"delayDetail"}], "estimatedDeliveryTimeWindow", "standardTransitTimeWindow",
"error"}]}]}}`.

`eventType` says what happened; `derivedStatusCode` is FedEx's own category
for an event type the table does not know. A delivery exception's reason is
in its `exceptionCode`, a delay's in `delayDetail.type`. Scan times carry an
offset, except some that do not: a time without offset is placed in the zone
of the scan's state or country; one at exactly midnight is a date (FedEx
stamps a pickup known only by its day so), placed no earlier than the events
of that day that come before it in a parcel's journey. The estimate is
ESTIMATED_DELIVERY in `dateAndTimes`, else the end of the estimated delivery
window, else of the standard transit window; ACTUAL_DELIVERY is not an estimate.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Any

import msgspec

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, TimeRule, parse_json
from api.inbound.adapters.estimates import destination_zone, promised_day
from api.inbound.adapters.zones import place_local_time
from domain.status import JOURNEY, Reason, Status

SOURCE = "fedex"

# Scan event types (`scanEvents[].eventType`), as FedEx's tracking event type
# codes name them (FedEx Web Services TrackEvent.EventType, the same codes in
# the Track API) and as FedEx's sandbox answers show them (karrio's fedex
# tracking tests: OC, PU, AF, AR, DP, AO, AE, IT, FD, OD, DE, DY, HP, DL).
# `DP` here is "departed", unlike DHL Express. Keyed by upper-case code.
EVENT_TYPES: dict[str, tuple[Status, Reason | None]] = {
    "OC": (Status.LABEL_CREATED, None),  # shipment information sent to FedEx
    "PU": (Status.IN_TRANSIT, None),  # picked up
    "PX": (Status.IN_TRANSIT, None),  # picked up, see details
    "AF": (Status.IN_TRANSIT, None),  # at local FedEx facility
    "AR": (Status.IN_TRANSIT, None),  # arrived at FedEx location
    "DP": (Status.IN_TRANSIT, None),  # departed FedEx location
    "OF": (Status.IN_TRANSIT, None),  # at FedEx origin facility
    "LO": (Status.IN_TRANSIT, None),  # left origin
    "AA": (Status.IN_TRANSIT, None),  # at airport
    "PL": (Status.IN_TRANSIT, None),  # plane landed
    "PF": (Status.IN_TRANSIT, None),  # plane in flight
    "SF": (Status.IN_TRANSIT, None),  # at sort facility
    "TR": (Status.IN_TRANSIT, None),  # transfer
    "IT": (Status.IN_TRANSIT, None),  # in transit
    "IX": (Status.IN_TRANSIT, None),  # in transit, see details
    "FD": (Status.IN_TRANSIT, None),  # at FedEx destination facility
    "AO": (Status.IN_TRANSIT, None),  # shipment arriving on time
    "AE": (Status.IN_TRANSIT, None),  # shipment arriving early
    "CC": (Status.IN_TRANSIT, None),  # cleared customs
    "CP": (Status.IN_TRANSIT, None),  # clearance in progress
    "OD": (Status.OUT_FOR_DELIVERY, None),  # on FedEx vehicle for delivery
    "ED": (Status.OUT_FOR_DELIVERY, None),  # enroute to delivery
    "AD": (Status.OUT_FOR_DELIVERY, None),  # at delivery
    "DL": (Status.DELIVERED, None),  # delivered
    "HP": (Status.AVAILABLE_FOR_PICKUP, None),  # ready for recipient pickup
    "HL": (Status.AVAILABLE_FOR_PICKUP, None),  # hold at location
    "DE": (Status.DELIVERY_ATTEMPTED, Reason.OTHER),  # delivery exception; its exceptionCode says why
    "SE": (Status.EXCEPTION, Reason.OTHER),  # shipment exception
    "DY": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # delay; its delayDetail says why
    "DD": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # delivery delay
    "PD": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # pickup delay
    "CD": (Status.EXCEPTION, Reason.CUSTOMS),  # clearance delay
    "CA": (Status.CANCELLED, None),  # shipment cancelled
    "RS": (Status.RETURNED_TO_SENDER, None),  # return to shipper
}

# `derivedStatusCode`, FedEx's category of an event (the codes FedEx's sandbox
# answers show, and karrio's fedex TrackingStatus groups). For an eventType not above.
DERIVED_STATUSES: dict[str, Status] = {
    "IN": Status.LABEL_CREATED,  # label created
    "PU": Status.IN_TRANSIT,  # picked up
    "IT": Status.IN_TRANSIT,  # in transit
    "RL": Status.IN_TRANSIT,  # running late
    "OD": Status.OUT_FOR_DELIVERY,  # out for delivery
    "DL": Status.DELIVERED,  # delivered
    "DE": Status.DELIVERY_ATTEMPTED,  # delivery exception
    "SE": Status.EXCEPTION,  # shipment exception
    "DY": Status.EXCEPTION,  # delay
    "HL": Status.AVAILABLE_FOR_PICKUP,  # hold at location
    "CA": Status.CANCELLED,  # cancelled
    "RS": Status.RETURNED_TO_SENDER,  # return to shipper
}

# `exceptionCode` of delivery exceptions, with FedEx's `exceptionDescription`
# as its sandbox answers give them. Keyed by code as written.
EXCEPTION_CODES: dict[str, Reason] = {
    "08": Reason.RECIPIENT_UNAVAILABLE,  # customer not available or business closed
    "A47": Reason.CARRIER_DELAY,  # FedEx redirected your package to a nearby FedEx location
    "A52": Reason.CARRIER_DELAY,  # package delayed
}

# `delayDetail.type` of the Track API (WEATHER, OPERATIONAL, LOCAL, GENERAL, CLEARANCE).
DELAY_TYPES: dict[str, Reason] = {
    "WEATHER": Reason.WEATHER,
    "OPERATIONAL": Reason.CARRIER_DELAY,
    "LOCAL": Reason.CARRIER_DELAY,
    "GENERAL": Reason.CARRIER_DELAY,
    "CLEARANCE": Reason.CUSTOMS,
}

# Statuses whose reason an exception code or a delay type may say more about.
REASONED = frozenset({Status.EXCEPTION, Status.DELIVERY_ATTEMPTED})


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    results = record(document, "output").get("completeTrackResults")
    if not isinstance(results, list):
        errors = document.get("errors") if isinstance(document, dict) else None
        if isinstance(errors, list) and errors:
            said = "; ".join(
                f"{text(error, 'code')}: {text(error, 'message')}" for error in errors if isinstance(error, dict)
            )
            raise PayloadError(f"FedEx answered an error: {said}")
        raise PayloadError("a FedEx answer has an `output.completeTrackResults` list")
    events: list[MappedEvent] = []
    errors_found: list[ItemError] = []
    for result_index, complete in enumerate(results):
        where = f"output.completeTrackResults[{result_index}]"
        track_results = complete.get("trackResults") if isinstance(complete, dict) else None
        if not isinstance(track_results, list):
            errors_found.append(ItemError(where=where, message="trackResults is required"))
            continue
        for track_index, track in enumerate(track_results):
            track_where = f"{where}.trackResults[{track_index}]"
            if not isinstance(track, dict):
                errors_found.append(ItemError(where=track_where, message="a track result must be an object"))
                continue
            answered = record(track, "error")
            if answered:
                errors_found.append(
                    ItemError(where=track_where, message=f"{text(answered, 'code')}: {text(answered, 'message')}")
                )
                continue
            number = text(record(track, "trackingNumberInfo"), "trackingNumber") or text(complete, "trackingNumber")
            scans = track.get("scanEvents")
            if not number or not isinstance(scans, list):
                errors_found.append(
                    ItemError(where=track_where, message="a tracking number and scanEvents are required")
                )
                continue
            events.extend(map_scans(number, track, scans, track_where, errors_found, context))
    return Adapted(events=events, errors=errors_found)


def record(parent: Any, field: str) -> dict[str, Any]:
    value = parent.get(field) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def text(parent: dict[str, Any], field: str) -> str:
    value = parent.get(field)
    return value.strip() if isinstance(value, str) else ""


def estimated_delivery(track: dict[str, Any]) -> date | None:
    destination = record(track, "lastUpdatedDestinationAddress") or record(
        record(record(track, "destinationLocation"), "locationContactAndAddress"), "address"
    )
    zone = destination_zone(text(destination, "countryCode"), text(destination, "stateOrProvinceCode"))
    stamps = track.get("dateAndTimes")
    for entry in stamps if isinstance(stamps, list) else []:
        if isinstance(entry, dict) and text(entry, "type").upper() == "ESTIMATED_DELIVERY":
            found = promised_day(text(entry, "dateTime"), zone)
            if found is not None:
                return found
    for window_name in ("estimatedDeliveryTimeWindow", "standardTransitTimeWindow"):
        window = record(record(track, window_name), "window")
        # A window's two ends may differ in form (one with an offset, one without): the end is the promise.
        found = promised_day(text(window, "ends"), zone) or promised_day(text(window, "begins"), zone)
        if found is not None:
            return found
    return None


def map_scans(
    number: str,
    track: dict[str, Any],
    scans: list[Any],
    where: str,
    errors: list[ItemError],
    context: Context,
) -> list[MappedEvent]:
    estimated = estimated_delivery(track)
    mapped: list[tuple[MappedEvent, bool]] = []
    for index, scan in enumerate(scans):
        try:
            mapped.append(map_scan(number, scan, estimated, context))
        except (ValueError, OverflowError) as error:
            errors.append(ItemError(where=f"{where}.scanEvents[{index}]", message=str(error)))
    if not any(date_only for _, date_only in mapped):
        return [event for event, _ in mapped]
    timed = [event for event, date_only in mapped if not date_only]
    latest_by_zone: dict[tzinfo, dict[tuple[date, int], datetime]] = {}
    settled = []
    for event, date_only in mapped:
        if date_only:
            zone = event.occurred_at.tzinfo or UTC
            if zone not in latest_by_zone:
                latest_by_zone[zone] = latest_by_day_and_rank(timed, zone)
            event = settle_date_only(event, latest_by_zone[zone])
        settled.append(event)
    return settled


def latest_by_day_and_rank(timed: list[MappedEvent], zone: tzinfo) -> dict[tuple[date, int], datetime]:
    """The latest instant of each local day (in `zone`) and place in the journey."""
    latest: dict[tuple[date, int], datetime] = {}
    for other in timed:
        try:
            key = (other.occurred_at.astimezone(zone).date(), JOURNEY[other.status])
        except OverflowError:
            continue
        if key not in latest or other.occurred_at > latest[key]:
            latest[key] = other.occurred_at
    return latest


def settle_date_only(event: MappedEvent, latest: dict[tuple[date, int], datetime]) -> MappedEvent:
    """A scan stamped at midnight without offset is known only by its day: it is placed no
    earlier than the events of that day that come before it in a parcel's journey, so that a
    pickup known by its day does not sort before the label made that morning."""
    day, rank = event.occurred_at.date(), JOURNEY[event.status]
    before = [latest[(day, earlier)] for earlier in range(rank) if (day, earlier) in latest]
    if not before:
        return event
    return msgspec.structs.replace(event, occurred_at=max(event.occurred_at, *before))


def map_scan(number: str, scan: Any, estimated: date | None, context: Context) -> tuple[MappedEvent, bool]:
    if not isinstance(scan, dict):
        raise ValueError("a scan event must be an object")
    event_type = text(scan, "eventType").upper()
    derived = text(scan, "derivedStatusCode").upper()
    if not event_type and not derived:
        raise ValueError("a scan event needs an eventType or a derivedStatusCode")
    known = EVENT_TYPES.get(event_type)
    unmapped = known is None
    status, reason = known if known is not None else (DERIVED_STATUSES.get(derived, Status.IN_TRANSIT), Reason.OTHER)
    exception_code = text(scan, "exceptionCode")
    if status in REASONED:
        delay_type = text(record(scan, "delayDetail"), "type").upper()
        delay = DELAY_TYPES.get(delay_type)
        # A named cause of delay (weather, clearance) says more than an exception code; GENERAL says less.
        specific = delay if delay_type != "GENERAL" else None
        reason = specific or EXCEPTION_CODES.get(exception_code) or delay or reason
    stamp = text(scan, "date")
    if not stamp:
        raise ValueError("date is required")
    local = datetime.fromisoformat(stamp)
    location = record(scan, "scanLocation")
    country, state = text(location, "countryCode"), text(location, "stateOrProvinceCode")
    occurred_at, time_rule = place_local_time(local, country, state, context)
    date_only = time_rule != TimeRule.OFFSET and (local.hour, local.minute, local.second) == (0, 0, 0)
    place = ", ".join(part for part in (text(location, "city"), state, text(location, "postalCode"), country) if part)
    description = text(scan, "eventDescription")
    said = text(scan, "exceptionDescription")
    return (
        MappedEvent(
            tracking_number=number,
            status=status,
            reason=reason,
            occurred_at=occurred_at,
            time_rule=time_rule,
            location=place or None,
            description=f"{description}: {said}" if said and said != description else description,
            estimated_delivery=estimated,
            carrier_event_id=None,
            carrier_code=f"{event_type}/{exception_code}" if exception_code else event_type,
            carrier_status=said or description,
            unmapped=unmapped,
        ),
        date_only,
    )
