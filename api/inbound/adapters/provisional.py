"""A stand-in for the shared adapter interface (api/inbound/adapters/base.py and
zones.py, written on branch `inbound`), which had not appeared when these
adapters were written. It follows the interface as the brief describes it, so
that swapping the imports for base and zones is the whole of the change.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ElementTree
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec

from domain.status import Reason, Status


class TimeRule(enum.StrEnum):
    """How an event's instant was placed: the source's own offset, a zone the
    source names, the zone of the event's location, or the account's zone."""

    OFFSET = "offset"
    SOURCE_ZONE = "source_zone"
    LOCATION = "location"
    ACCOUNT = "account"


class Context(msgspec.Struct, frozen=True):
    account_zone: str = "UTC"


class MappedEvent(msgspec.Struct, frozen=True):
    tracking_number: str
    status: Status
    reason: Reason | None
    occurred_at: datetime
    time_rule: TimeRule
    location: str | None
    description: str
    estimated_delivery: date | None
    carrier_event_id: str | None
    carrier_code: str
    carrier_status: str


class ItemError(msgspec.Struct, frozen=True):
    where: str
    message: str


class Adapted(msgspec.Struct, frozen=True):
    events: list[MappedEvent]
    errors: list[ItemError]


class PayloadError(ValueError):
    """The body as a whole cannot be read as the source's format."""


def parse_xml(payload: bytes) -> ElementTree.Element:
    # As defusedxml's forbid_dtd: no document type, so no entity of any kind.
    if b"<!DOCTYPE" in payload.upper() or b"<!ENTITY" in payload.upper():
        raise PayloadError("a document type or entity declaration is not accepted")
    try:
        return ElementTree.fromstring(payload)
    except (ElementTree.ParseError, ValueError, LookupError) as error:
        raise PayloadError(f"not well-formed XML: {error}") from None


US_STATE_ZONES: dict[str, str] = {
    **dict.fromkeys(
        [
            "CT",
            "DE",
            "DC",
            "FL",
            "GA",
            "IN",
            "KY",
            "ME",
            "MD",
            "MA",
            "MI",
            "NH",
            "NJ",
            "NY",
            "NC",
            "OH",
            "PA",
            "RI",
            "SC",
            "VT",
            "VA",
            "WV",
        ],
        "America/New_York",
    ),
    **dict.fromkeys(
        ["AL", "AR", "IL", "IA", "LA", "MN", "MS", "MO", "NE", "ND", "OK", "SD", "TN", "TX", "WI", "KS"],
        "America/Chicago",
    ),
    **dict.fromkeys(["CO", "MT", "NM", "UT", "WY", "ID"], "America/Denver"),
    "AZ": "America/Phoenix",
    **dict.fromkeys(["CA", "NV", "OR", "WA"], "America/Los_Angeles"),
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
    "VI": "America/St_Thomas",
    "GU": "Pacific/Guam",
}

CA_PROVINCE_ZONES: dict[str, str] = {
    "NL": "America/St_Johns",
    **dict.fromkeys(["NS", "NB", "PE"], "America/Halifax"),
    **dict.fromkeys(["QC", "ON", "NU"], "America/Toronto"),
    "MB": "America/Winnipeg",
    "SK": "America/Regina",
    **dict.fromkeys(["AB", "NT"], "America/Edmonton"),
    "BC": "America/Vancouver",
    "YT": "America/Whitehorse",
}

REGION_ZONES: dict[str, dict[str, str]] = {"US": US_STATE_ZONES, "CA": CA_PROVINCE_ZONES}
COUNTRY_ZONES: dict[str, str] = {"ES": "Europe/Madrid", "PT": "Europe/Lisbon", "DE": "Europe/Berlin"}


def place_local_time(
    local: datetime, country: str | None, region: str | None, context: Context
) -> tuple[datetime, TimeRule]:
    """An instant for a local time without offset: in the zone of the event's
    location where it is known, else in the account's zone."""
    if local.tzinfo is not None:
        return local, TimeRule.OFFSET
    country_code = (country or "").strip().upper()
    zone_name = REGION_ZONES.get(country_code, {}).get((region or "").strip().upper()) or COUNTRY_ZONES.get(
        country_code
    )
    if zone_name is not None:
        return local.replace(tzinfo=ZoneInfo(zone_name)), TimeRule.LOCATION
    return local.replace(tzinfo=ZoneInfo(context.account_zone)), TimeRule.ACCOUNT


def fixed_zone(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))
