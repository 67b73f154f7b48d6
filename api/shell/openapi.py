"""What Litestar's OpenAPI generation and routing need from us to describe and
answer the API exactly: input structs that refuse unknown fields say so, and
OPTIONS names every method a path serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

# Litestar's own plugin for msgspec structs; we add one keyword to what it makes
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.routes import HTTPRoute

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.handlers import HTTPRouteHandler
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """A struct with `forbid_unknown_fields` is documented with
    `additionalProperties: false`, so a client (or a fuzzer) knows an unknown
    field is a 400 rather than ignored."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct_type = field_definition.type_
        if (
            isinstance(struct_type, type)
            and issubclass(struct_type, msgspec.Struct)
            and struct_type.__struct_config__.forbid_unknown_fields
        ):
            schema.additional_properties = False
        return schema


def allowed_methods(app: Litestar) -> dict[HTTPRouteHandler, str]:
    """The `Allow` header of each path's OPTIONS handler, from the path's final route.

    Litestar registers a controller's handlers one at a time and makes a path's
    OPTIONS handler with the first of them, so on a path served by GET and POST
    its own answer names only the first method. The app answers OPTIONS from
    this map instead (see `create_app`)."""
    allowed: dict[HTTPRouteHandler, str] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if handler.http_methods == {"OPTIONS"}:
                    allowed[handler] = ", ".join(sorted(route.methods))
    return allowed
