"""The monthly report's rules that are not counting: what CSAT and the response
rate are, and how a month's recurring problems compare with the month before.

The database counts; these decide what the counts mean, so that the API, the
CLI and the tests agree on one definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

RATE_DIGITS = 4
TOP = 3


def share(part: int, whole: int) -> float | None:
    """part / whole to four places; None when there is nothing to share (0 of 0)."""
    if part < 0 or whole < 0 or part > whole:
        raise ValueError(f"a share needs 0 <= part <= whole, not {part} of {whole}")
    return round(part / whole, RATE_DIGITS) if whole else None


def csat(satisfied: int, rated: int) -> float | None:
    """Customer satisfaction: the share of ratings that are 4 or 5."""
    return share(satisfied, rated)


def response_rate(rated: int, delivered: int) -> float | None:
    """The share of delivered shipments whose recipient rated the delivery."""
    return share(rated, delivered)


def previous_month(month: date) -> date:
    """The first day of the month before `month`'s."""
    return date(month.year - 1, 12, 1) if month.month == 1 else date(month.year, month.month - 1, 1)


@dataclass(frozen=True)
class Trend:
    name: str
    count: int
    previous_count: int

    @property
    def change(self) -> int:
        return self.count - self.previous_count


def recurring(this_month: Mapping[str, int], last_month: Mapping[str, int], top: int = TOP) -> list[Trend]:
    """This month's `top` problems by count (ties by name), each beside its count
    the month before (0 when it did not happen then). A problem of last month
    alone is not recurring this month, so it is not listed."""
    ranked = sorted(((n, name) for name, n in this_month.items() if n > 0), key=lambda x: (-x[0], x[1]))
    return [Trend(name, n, last_month.get(name, 0)) for n, name in ranked[:top]]
