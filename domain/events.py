"""What happened to a shipment, in the past tense. The shell saves each one
as an entry of the change log, in the same transaction as the change itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from domain.shipment import LateDelivery, PromiseRevision, TrackingEvent


class ShipmentCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A new shipment: followers of an account learn of it before its first event."""


class EventRecorded(msgspec.Struct, frozen=True, kw_only=True):
    event: TrackingEvent


class PromiseRevised(msgspec.Struct, frozen=True, kw_only=True):
    revision: PromiseRevision


class DeliveredLate(msgspec.Struct, frozen=True, kw_only=True):
    """Delivered after the promise, with no record yet: found at delivery."""

    late_delivery: LateDelivery


class PromiseBroken(msgspec.Struct, frozen=True, kw_only=True):
    """The promise passed with the shipment still on its way: found at the deadline."""

    late_delivery: LateDelivery


class RiskChanged(msgspec.Struct, frozen=True, kw_only=True):
    """The carrier's estimate now lands after the promise (or fits it again)."""

    at_risk: bool


Change = ShipmentCreated | EventRecorded | PromiseRevised | DeliveredLate | PromiseBroken | RiskChanged
