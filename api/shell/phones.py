"""Phone numbers in E.164 (phonenumbers, Google's libphonenumber in Python): how a
recipient's phone is stored, and how a support search reads one, so that
`+34 600 12 34 56`, `0034600123456` and, for an account in Spain, `600123456`
are the same number."""

from __future__ import annotations

import re

import phonenumbers

# the regions phonenumbers knows, for an account's `country`
COUNTRIES = sorted(phonenumbers.SUPPORTED_REGIONS)

# what a phone may be written with: digits, +, spaces, brackets, dots, dashes
_PHONE_LIKE = re.compile(r"^\+?[0-9 ().-]{6,40}$")


def e164(written: str | None, country: str | None) -> str | None:
    """The number in E.164 (`+34600123456`), or None when it cannot be read as one.
    A number in national form is read as one of `country`; with no country, only
    an international form (`+…`, or `00…`, the ITU's international prefix) is read."""
    if written is None:
        return None
    written = written.strip()
    if not _PHONE_LIKE.match(written):
        return None
    if country is None and written.startswith("00"):
        written = "+" + written[2:]
    try:
        number = phonenumbers.parse(written, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def readings(query: str, countries: list[str]) -> list[str]:
    """Every E.164 number a query could be: read internationally, and as a national
    number of each of these countries (a search spans accounts in all of them)."""
    found = {e164(query, None)} | {e164(query, country) for country in countries}
    return sorted(number for number in found if number is not None)
