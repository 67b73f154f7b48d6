"""Query and header parameters shared by the capabilities, each with the range it
is checked against before it reaches SQL, so the OpenAPI document states every
constraint the server enforces."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar.params import HeaderParameter, QueryParameter

from api.shell.errors import FieldError, invalid
from api.shell.responses import aware
from domain.shipment import INSTANT_PATTERN

# the largest integer every JSON client reads exactly (and far below bigint's)
MAX_SEQ = 2**53 - 1

ID_PATTERN = r"^[a-z]{1,8}_[0-9a-z]{26}$"
TEXT_PATTERN = r"^[^\x00]*$"

AccountId = Annotated[
    str | None,
    QueryParameter(
        max_length=64,
        pattern=TEXT_PATTERN,
        description="support and admin keys: one account only (a customer key always reads its own)",
    ),
]
CarrierCode = Annotated[
    str | None,
    QueryParameter(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", description="a carrier code"),
]
Cursor = Annotated[
    str | None,
    QueryParameter(min_length=1, max_length=64, pattern=ID_PATTERN, description="`next_cursor` of the previous page"),
]
QueryInstant = Annotated[
    str | None,
    QueryParameter(
        pattern=INSTANT_PATTERN,
        max_length=40,
        description="an instant, RFC 3339 with an offset (e.g. 2026-11-22T18:00:00+01:00), years 1970 to 2199",
        schema_extra={"format": "date-time"},
    ),
]


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=TEXT_PATTERN,
        description="makes a retry safe: the same key with the same body gets the first answer; with another body, a 422",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        max_length=200,
        description="the ETag of a copy the client holds: a 304 with no body while it is current",
    ),
]


def query_instant(name: str, value: str | None) -> datetime | None:
    """A query instant (its form checked by INSTANT_PATTERN) as an aware UTC datetime."""
    if value is None:
        return None
    try:
        moment = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        raise invalid(
            [FieldError(f"query.{name}", "not a date and time (RFC 3339)")], "invalid query parameter"
        ) from None
    return aware(name, moment)
