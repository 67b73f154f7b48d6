"""Schemathesis hooks: the rules of ontime's requests that JSON Schema cannot state.

A JSON Schema describes each field alone; these rules tie fields together or to the
data already stored. Each is documented (the field's description, docs/api.md) and
enforced with a 4xx naming the field, so a generated request that breaks one is not a
"schema-valid request" the server must accept. The hooks put such requests right
while leaving every other part as generated (a negative case keeps its fault):

- a promise's window is ordered: `promised_from`, when given, is not after `promised_by`;
- an Idempotency-Key is fresh: the same key with another body is a 422 (as the IETF
  draft on the header asks), so each generated request gets a key of its own;
- a case is on a shipment or on an account: one of the two, not both;
- a shipment is created in an account that exists: an admin must name one, and
  `ONTIME_FUZZ_ACCOUNT_ID` is the one the fuzzed deployment has.

`make test` (tests/fuzz/test_openapi.py) applies them to its cases itself, and hands
them to the schemathesis CLI for the stateful phase (SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from typing import Any

import msgspec
import schemathesis
from schemathesis.generation import GenerationMode

_KEY = re.compile(r"^[^\x00]{1,200}$")


def _instant(value: Any) -> datetime | None:
    """An RFC 3339 instant read as the server reads it (msgspec), or None."""
    if not isinstance(value, str):
        return None
    try:
        return msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        return None


def window_is_ordered(body: Any) -> bool:
    """promised_from, when given, is not after promised_by."""
    if not isinstance(body, dict):
        return True
    start, end = _instant(body.get("promised_from")), _instant(body.get("promised_by"))
    return start is None or end is None or start <= end


def put_right_body(body: Any, *, creating_a_shipment: bool) -> None:
    """Order a promise's window, and name the deployment's account when creating a shipment."""
    if not isinstance(body, dict):
        return
    if not window_is_ordered(body):
        body["promised_from"] = body["promised_by"]
    account_id = os.environ.get("ONTIME_FUZZ_ACCOUNT_ID")
    if creating_a_shipment and account_id and (body.get("account_id") is None or isinstance(body["account_id"], str)):
        body["account_id"] = account_id


def put_right_case(body: Any) -> None:
    """A case names a shipment or an account: of both, keep the shipment; of neither, name the account."""
    if not isinstance(body, dict):
        return
    if body.get("shipment_id") is not None:
        body.pop("account_id", None)
    elif body.get("account_id") is None:
        body["account_id"] = os.environ.get("ONTIME_FUZZ_ACCOUNT_ID", "acc_fuzz")


def put_right_headers(headers: dict[str, Any] | None) -> None:
    """A fresh Idempotency-Key for each request that sends a valid one."""
    if headers and isinstance(headers.get("Idempotency-Key"), str) and _KEY.match(headers["Idempotency-Key"]):
        headers["Idempotency-Key"] = uuid.uuid4().hex


def put_right(case: schemathesis.Case) -> None:
    """All of the above, on a case meant to be valid; a negative case keeps its fault."""
    if case.meta is not None and case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    put_right_headers(case.headers)
    put_right_body(case.body, creating_a_shipment=case.method.upper() == "POST" and case.path == "/v1/shipments")
    if case.method.upper() == "POST" and case.path == "/v1/cases":
        put_right_case(case.body)
    if case.method.upper() == "POST" and case.path == "/v1/integrations" and isinstance(case.body, dict):
        # an admin names the account; a customer may name its own: the deployment's serves both
        case.body["account_id"] = os.environ.get("ONTIME_FUZZ_ACCOUNT_ID", "acc_fuzz")


@schemathesis.hook
def before_call(ctx: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    # right before sending: in the stateful phase a link fills fields from an
    # earlier answer (a revision's promised_by from the shipment's) after any map_ hook
    put_right(case)
