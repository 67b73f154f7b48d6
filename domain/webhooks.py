"""Webhook delivery rules: which changes an endpoint wants, when a failed
delivery is tried again, and when an endpoint has failed for long enough to be
disabled. Pure: the worker asks, these answer."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(hours=1)
RETRY_WINDOW = timedelta(hours=24)
JITTER = 0.2  # each wait is drawn within ±20% of its nominal value


def wanted(kind: str, late: bool, *, kinds: Collection[str], late_only: bool) -> bool:
    """An endpoint wants a change of a kind it asked for (no kinds: every kind);
    with `late_only`, only changes that say a shipment is late."""
    if kinds and kind not in kinds:
        return False
    return late or not late_only


def retry_wait(
    attempts: int,
    draw: float,
    *,
    first: timedelta = FIRST_RETRY,
    longest: timedelta = LONGEST_WAIT,
    jitter: float = JITTER,
) -> timedelta:
    """How long to wait after the `attempts`-th failure in a row (1 for the
    first): `first`, doubling each time, at most `longest`, spread by `draw`
    (uniform in [0, 1)) over ±`jitter` so that endpoints failing together do not
    come back together."""
    if attempts < 1:
        raise ValueError("attempts counts failures, from 1")
    if not 0.0 <= draw < 1.0:
        raise ValueError("draw is in [0, 1)")
    nominal = min(longest.total_seconds(), first.total_seconds() * 2 ** min(attempts - 1, 40))
    return timedelta(seconds=nominal * (1 - jitter + 2 * jitter * draw))


def gives_up(failing_since: datetime, now: datetime, window: timedelta = RETRY_WINDOW) -> bool:
    """Disable an endpoint once its deliveries have failed for the whole window."""
    return now - failing_since >= window
