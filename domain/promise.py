"""Delivery promises, lateness and at-risk: plain functions of the facts and `now`."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.errors import InvalidField
from domain.status import TERMINAL, Status


class PromiseError(InvalidField):
    """A promise that cannot be kept as stated (its window is inverted)."""


def check_window(promised_by: datetime, promised_from: datetime | None) -> None:
    if promised_from is not None and promised_from > promised_by:
        raise PromiseError("promised_from", "promised_from must not be after promised_by")


def delivered_late(promised_by: datetime, delivered_at: datetime) -> bool:
    return delivered_at > promised_by


def delay(promised_by: datetime, delivered_at: datetime) -> timedelta:
    return delivered_at - promised_by


def is_late(
    status: Status,
    promised_by: datetime,
    delivered_at: datetime | None,
    late_recorded: bool,
    now: datetime,
) -> bool:
    """Late: a lateness record stands, or it was delivered after the promise,
    or the promise has passed while the shipment is still on its way."""
    if late_recorded:
        return True
    if delivered_at is not None:
        return delivered_late(promised_by, delivered_at)
    return status not in TERMINAL and now > promised_by


def is_at_risk(
    status: Status,
    promised_by: datetime,
    estimated_delivery: datetime | None,
    now: datetime,
) -> bool:
    """At risk: still on its way, the deadline not yet passed, and the carrier's
    latest estimate lands after it."""
    return (
        status not in TERMINAL
        and estimated_delivery is not None
        and now <= promised_by
        and estimated_delivery > promised_by
    )


def is_stale(status: Status, last_movement: datetime, now: datetime, stale_after: timedelta) -> bool:
    """Stale: still on its way, and nothing has moved for `stale_after`."""
    return status not in TERMINAL and now - last_movement > stale_after
