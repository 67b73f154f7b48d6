"""Placing a local time that carries no offset: in the zone of the event's
location where it can be known (US state, Canadian province, or a country with
one zone), else in the account's zone; the event records which rule was used.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from api.inbound.adapters.base import Context, TimeRule

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
