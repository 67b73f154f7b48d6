"""The day a carrier's estimated delivery names, whatever form it comes in.

Carriers write the same promise as a date (`2024-03-12`), as a date stored as
UTC midnight (`2024-03-12T00:00:00Z`, which reads as the eleventh anywhere in
the Americas if it is converted), as a local time with its offset
(`2024-03-12T23:59:00-05:00`, end of day) or without one, or as a UTC instant
that is really a time in the destination's zone. The rule, in that order:
a plain date is that date; a time without offset is its own date; UTC midnight
is a date; another UTC instant is converted to the destination's zone when it
is known; a time with any other offset is the date written in that offset.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from api.inbound.adapters.zones import COUNTRY_ZONES, REGION_ZONES


def destination_zone(country: str | None, region: str | None) -> ZoneInfo | None:
    country_code = (country or "").strip().upper()
    name = REGION_ZONES.get(country_code, {}).get((region or "").strip().upper()) or COUNTRY_ZONES.get(country_code)
    return ZoneInfo(name) if name is not None else None


def promised_day(stamp: str, zone: ZoneInfo | None = None) -> date | None:
    """The promised day in `stamp`, or None when it is not a date or a time."""
    text = stamp.strip()
    if len(text) < 10:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = moment.utcoffset()
    if offset is None:
        return moment.date()
    if offset == timedelta(0):
        if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
            return moment.date()
        if zone is not None:
            try:
                return moment.astimezone(zone).date()
            except OverflowError:
                return moment.date()
    return moment.date()
