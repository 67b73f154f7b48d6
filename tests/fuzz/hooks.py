"""Schemathesis hooks: the rules of ontime's requests that JSON Schema cannot state.

A JSON Schema describes each field alone; these rules tie fields together. Each is
documented in the field's description and enforced with a 400 naming the field, so
generated requests that break one are not "schema-valid requests" the server must
accept: the hooks keep them out of the positive cases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import schemathesis


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None


def window_is_ordered(body: Any) -> bool:
    """promised_from, when given, is not after promised_by."""
    if not isinstance(body, dict):
        return True
    start, end = _instant(body.get("promised_from")), _instant(body.get("promised_by"))
    return start is None or end is None or start <= end


@schemathesis.hook("filter_body").apply_to(
    method=["POST", "PUT"], path_regex=r"^/v1/shipments(/\{shipment_id\}/promise)?$"
)
def promise_windows_are_ordered(ctx: schemathesis.HookContext, body: Any) -> bool:
    return window_is_ordered(body)
