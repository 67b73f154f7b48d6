"""Statuses, which are terminal, and how events order.

A shipment's status is that of its *effective* event: the greatest event by
`order_key`. Terminal events outrank every non-terminal one, so a terminal status
is never left by an older or a non-terminal event; among equals the carrier's
`occurred_at` decides, then the status's place in the journey, then the event key.
Because the effective event is a maximum, the result does not depend on the
order in which events arrive.
"""

from __future__ import annotations

import enum
from datetime import datetime


class Status(enum.StrEnum):
    LABEL_CREATED = "label_created"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_ATTEMPTED = "delivery_attempted"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    EXCEPTION = "exception"
    DELIVERED = "delivered"
    RETURNED_TO_SENDER = "returned_to_sender"
    CANCELLED = "cancelled"


TERMINAL: frozenset[Status] = frozenset({Status.DELIVERED, Status.RETURNED_TO_SENDER, Status.CANCELLED})

# Where a status stands in a parcel's journey; breaks ties between events that
# carry the same occurred_at (carriers often stamp a whole scan batch alike).
JOURNEY: dict[Status, int] = {
    Status.LABEL_CREATED: 0,
    Status.IN_TRANSIT: 1,
    Status.EXCEPTION: 2,
    Status.OUT_FOR_DELIVERY: 3,
    Status.DELIVERY_ATTEMPTED: 4,
    Status.AVAILABLE_FOR_PICKUP: 5,
    Status.CANCELLED: 6,
    Status.RETURNED_TO_SENDER: 7,
    Status.DELIVERED: 8,
}


class Reason(enum.StrEnum):
    ADDRESS_ISSUE = "address_issue"
    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    REFUSED = "refused"
    CUSTOMS = "customs"
    DAMAGED = "damaged"
    LOST = "lost"
    WEATHER = "weather"
    CARRIER_DELAY = "carrier_delay"
    OTHER = "other"


def is_terminal(status: Status) -> bool:
    return status in TERMINAL


OrderKey = tuple[bool, datetime, int, str]


def order_key(status: Status, occurred_at: datetime, key: str) -> OrderKey:
    """The key by which the effective event is the greatest."""
    return (status in TERMINAL, occurred_at, JOURNEY[status], key)
