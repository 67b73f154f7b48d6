"""AfterShip: the tracking webhook (`{"event": "tracking_update", "msg": {...tracking...}, "ts"}`),
signed with `aftership-hmac-sha256` (base64 HMAC-SHA256 of the body).

The tracking carries every checkpoint so far, each with AfterShip's `tag`
(its category: Pending, InfoReceived, InTransit, OutForDelivery, AttemptFail,
Delivered, AvailableForPickup, Exception, Expired) and `subtag` (`Exception_011`).
The table is keyed by subtag; a subtag it does not know maps by its tag (the
source's own category) with reason other and is flagged unmapped; a tag it does
not know either is in transit, reason other. `checkpoint_time` is the carrier's
local time, with an offset when AfterShip knows it and without one otherwise
(placed by the checkpoint's country and state, else the account's zone). The
estimate is the latest AfterShip gives: `latest_estimated_delivery`, else the
courier's, else AfterShip's own, else `expected_delivery`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from api.inbound.adapters.base import Adapted, Context, ItemError, MappedEvent, PayloadError, parse_json
from api.inbound.adapters.estimates import destination_zone, promised_day
from api.inbound.adapters.zones import place_local_time
from domain.status import Reason, Status

SOURCE = "aftership"

# AfterShip's tags (developers.aftership.com, "Delivery statuses"): its own category.
TAGS: dict[str, Status] = {
    "PENDING": Status.LABEL_CREATED,
    "INFORECEIVED": Status.LABEL_CREATED,
    "INTRANSIT": Status.IN_TRANSIT,
    "OUTFORDELIVERY": Status.OUT_FOR_DELIVERY,
    "ATTEMPTFAIL": Status.DELIVERY_ATTEMPTED,
    "AVAILABLEFORPICKUP": Status.AVAILABLE_FOR_PICKUP,
    "DELIVERED": Status.DELIVERED,
    "EXCEPTION": Status.EXCEPTION,
    "EXPIRED": Status.EXCEPTION,  # no update from the carrier for 30 days
}

# Sub-statuses, keyed by upper-case subtag, with AfterShip's meaning.
SUBTAGS: dict[str, tuple[Status, Reason | None]] = {
    "PENDING_001": (Status.LABEL_CREATED, None),  # no information yet
    "INFORECEIVED_001": (Status.LABEL_CREATED, None),  # carrier has the shipment information
    "INTRANSIT_001": (Status.IN_TRANSIT, None),  # on its way
    "INTRANSIT_002": (Status.IN_TRANSIT, None),  # acceptance scan
    "INTRANSIT_003": (Status.IN_TRANSIT, None),  # arrived at a hub or sorting center
    "INTRANSIT_004": (Status.IN_TRANSIT, None),  # arrived at the destination country
    "INTRANSIT_005": (Status.IN_TRANSIT, None),  # customs clearance completed
    "INTRANSIT_007": (Status.IN_TRANSIT, None),  # departed
    "OUTFORDELIVERY_001": (Status.OUT_FOR_DELIVERY, None),  # out for delivery
    "OUTFORDELIVERY_003": (Status.OUT_FOR_DELIVERY, None),  # customer contacted before delivery
    "OUTFORDELIVERY_004": (Status.OUT_FOR_DELIVERY, None),  # delivery appointment scheduled
    "ATTEMPTFAIL_001": (Status.DELIVERY_ATTEMPTED, Reason.OTHER),  # attempt failed, notice left
    "ATTEMPTFAIL_002": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # recipient not available
    "ATTEMPTFAIL_003": (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),  # business closed
    "AVAILABLEFORPICKUP_001": (Status.AVAILABLE_FOR_PICKUP, None),  # at a pickup point
    "DELIVERED_001": (Status.DELIVERED, None),  # delivered
    "DELIVERED_002": (Status.DELIVERED, None),  # picked up by the customer
    "DELIVERED_003": (Status.DELIVERED, None),  # delivered and signed for
    "DELIVERED_004": (Status.DELIVERED, None),  # delivered and cash collected
    "EXCEPTION_001": (Status.EXCEPTION, Reason.OTHER),  # a shipping exception
    "EXCEPTION_002": (Status.EXCEPTION, Reason.ADDRESS_ISSUE),  # customer moved
    "EXCEPTION_003": (Status.EXCEPTION, Reason.REFUSED),  # recipient refused the package
    "EXCEPTION_004": (Status.EXCEPTION, Reason.CARRIER_DELAY),  # delayed for unforeseen reasons
    "EXCEPTION_011": (Status.RETURNED_TO_SENDER, None),  # returned to the sender
}

# AfterShip names countries in ISO 3166-1 alpha-3; the zones know these.
ISO3_TO_ISO2: dict[str, str] = {"USA": "US", "CAN": "CA", "ESP": "ES", "PRT": "PT", "DEU": "DE"}


def adapt(payload: bytes, context: Context) -> Adapted:
    document = parse_json(payload)
    tracking = document.get("msg") if isinstance(document, dict) else None
    if not isinstance(tracking, dict):
        raise PayloadError("an AfterShip webhook has a `msg` object (the tracking)")
    number = tracking.get("tracking_number")
    checkpoints = tracking.get("checkpoints")
    if not isinstance(number, str) or not number.strip():
        raise PayloadError("the tracking has no `tracking_number`")
    if not isinstance(checkpoints, list):
        raise PayloadError("the tracking has no `checkpoints` list")
    estimated = estimate(tracking)
    events: list[MappedEvent] = []
    errors: list[ItemError] = []
    for index, checkpoint in enumerate(checkpoints):
        try:
            events.append(map_checkpoint(number.strip(), checkpoint, estimated, context))
        except (ValueError, TypeError) as error:
            errors.append(ItemError(where=f"msg.checkpoints[{index}]", message=str(error)))
    return Adapted(events=events, errors=errors)


def text(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    return value.strip() if isinstance(value, str) else ""


def estimate(tracking: dict[str, Any]) -> date | None:
    zone = destination_zone(ISO3_TO_ISO2.get(text(tracking, "destination_country_iso3").upper()), None)
    latest = tracking.get("latest_estimated_delivery")
    candidates: list[str] = []
    if isinstance(latest, dict):
        candidates += [text(latest, "datetime"), text(latest, "datetime_max")]
    for field in ("courier_estimated_delivery_date", "aftership_estimated_delivery_date"):
        value = tracking.get(field)
        if isinstance(value, dict):
            candidates += [text(value, "estimated_delivery_date"), text(value, "estimated_delivery_date_max")]
    candidates.append(text(tracking, "expected_delivery"))
    for stamp in candidates:
        if stamp and (day := promised_day(stamp, zone)) is not None:
            return day
    return None


def map_checkpoint(number: str, checkpoint: Any, estimated: date | None, context: Context) -> MappedEvent:
    if not isinstance(checkpoint, dict):
        raise ValueError("a checkpoint must be an object")
    stamp = text(checkpoint, "checkpoint_time")
    if not stamp:
        raise ValueError("a checkpoint needs its checkpoint_time")
    try:
        local = datetime.fromisoformat(stamp)
    except ValueError:
        raise ValueError(f"checkpoint_time {stamp!r} is not an ISO 8601 time") from None
    tag, subtag = text(checkpoint, "tag"), text(checkpoint, "subtag")
    known = SUBTAGS.get(subtag.upper())
    unmapped = known is None
    if known is not None:
        status, reason = known
    else:
        status = TAGS.get(tag.upper(), Status.IN_TRANSIT)
        reason = Reason.OTHER
    iso2 = ISO3_TO_ISO2.get(text(checkpoint, "country_iso3").upper())
    occurred_at, time_rule = place_local_time(local, iso2, text(checkpoint, "state"), context)
    place = ", ".join(
        part
        for part in (text(checkpoint, "city"), text(checkpoint, "state"), text(checkpoint, "zip"), iso2 or "")
        if part
    ) or text(checkpoint, "location")
    message = text(checkpoint, "message")
    return MappedEvent(
        tracking_number=number,
        status=status,
        reason=reason,
        occurred_at=occurred_at,
        time_rule=time_rule,
        location=place or None,
        description=message or text(checkpoint, "subtag_message"),
        estimated_delivery=estimated,
        carrier_event_id=None,
        carrier_code=subtag or tag,
        carrier_status=text(checkpoint, "subtag_message") or message,
        unmapped=unmapped,
    )
