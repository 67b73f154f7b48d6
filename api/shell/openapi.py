"""Request bodies in the OpenAPI document.

Handlers decode their bodies themselves (msgspec, for exact field paths in
errors), so Litestar cannot see the body type; `documented_body(T)` gives a
handler an operation class that adds T's JSON schema, made by msgspec."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.spec import Operation


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve msgspec's local `#/$defs/…` references (our types are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def documented_body(body_type: Any, description: str | None = None) -> type[Operation]:
    schema = msgspec.json.schema(body_type)
    schema = _inline(schema, schema.pop("$defs", {}))
    request_body = {"required": True, "content": {"application/json": {"schema": schema}}}
    if description:
        request_body["description"] = description

    class WithBody(Operation):
        def to_schema(self) -> dict[str, Any]:
            document = super().to_schema()
            document["requestBody"] = request_body
            return document

    return WithBody
