"""What every capability's routes answer with: JSON bodies, keyset cursors, instants from the query."""

from __future__ import annotations

import base64
import re
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


_ID = re.compile(r"^[a-z]+_[0-9a-z]{26}$")


def cursor_id(cursor: str) -> str:
    """The id a cursor stands for; a cursor this API did not give out is a 400."""
    try:
        last_id = base64.urlsafe_b64decode(cursor.encode() + b"==").decode()
    except ValueError:
        last_id = ""
    if not _ID.match(last_id):
        raise invalid([FieldError("query.cursor", "not a cursor this API gave out")], "invalid query parameter")
    return last_id


def cursor_for(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise invalid([FieldError(f"query.{name}", "timestamp needs an offset (RFC 3339)")], "invalid query parameter")
    try:
        return utc(value, name)
    except InvalidField as exc:
        raise invalid([FieldError(f"query.{name}", exc.message)], "invalid query parameter") from None
