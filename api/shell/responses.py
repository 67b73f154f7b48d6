"""What every capability's routes answer with (bodies already encoded) and read (instants from the query)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Response

from api.shell.errors import FieldError, invalid
from domain.errors import InvalidField
from domain.shipment import utc

JSON = "application/json"


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    """A body already encoded as JSON (stored, or spliced from stored parts), sent as it is.

    The handler's return annotation, `Response[SomeStruct]`, documents what the bytes
    encode; the content itself is bytes, so the type says no more than Any."""
    return Response(content=body, status_code=status, media_type=JSON, headers=headers)


def aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid([FieldError(f"query.{name}", "timestamp needs an offset (RFC 3339)")], "invalid query parameter")
    try:
        return utc(value, name)
    except InvalidField as exc:
        raise invalid([FieldError(f"query.{name}", exc.message)], "invalid query parameter") from None
