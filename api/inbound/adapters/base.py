"""The shared adapter interface: what every adapter returns (events in our
vocabulary, per-item errors), the context it is given, how a body that cannot
be read is refused, and the one XML reader every XML source uses.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeElementTree
import msgspec
from defusedxml import DefusedXmlException

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
    # True when the source's code is not in the adapter's table: the event was
    # placed by the source's own category or the nearest status, reason other.
    unmapped: bool = False


class ItemError(msgspec.Struct, frozen=True):
    where: str
    message: str


class Adapted(msgspec.Struct, frozen=True):
    events: list[MappedEvent]
    errors: list[ItemError]


class PayloadError(ValueError):
    """The body as a whole cannot be read as the source's format."""


_json = msgspec.json.Decoder()


def parse_json(payload: bytes) -> Any:
    """The JSON document, or PayloadError saying why it is not one."""
    try:
        return _json.decode(payload)
    except msgspec.DecodeError as error:
        raise PayloadError(f"not JSON: {error}") from None


def parse_xml(payload: bytes) -> Element:
    """defusedxml with forbid_dtd: no document type, so no entity of any kind
    (billion laughs, external entities) is ever expanded or fetched."""
    try:
        return SafeElementTree.fromstring(payload, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise PayloadError("a document type or entity declaration is not accepted") from None
    except (SafeElementTree.ParseError, ValueError, LookupError) as error:
        raise PayloadError(f"not well-formed XML: {error}") from None
