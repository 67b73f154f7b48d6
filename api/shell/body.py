"""Request bodies: decoded straight from the bytes into their msgspec type.

Litestar's default path decodes JSON into Python objects and then converts them
with msgspec's lax rules (a string "5" passes for 5) and reports errors without
their paths inside lists. `JsonBody[T]` is a data DTO that instead decodes the
raw body once, strictly, into T, raising the RFC 9457 problem of
`api.shell.errors.decode` with the exact field path; and it documents T itself
(msgspec's own schema of T, constraints included) as the request body.

    @post("/", dto=JsonBody[CreateShipment], return_dto=None)
    async def create_shipment(self, data: CreateShipment) -> ...
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar, Generic, TypeVar

from litestar._openapi.schema_generation import SchemaCreator
from litestar.dto import AbstractDTO, DTOConfig, DTOFieldDefinition
from litestar.dto._backend import DTOBackend
from litestar.openapi.spec import Reference, Schema
from litestar.typing import FieldDefinition

from api.shell.errors import decode

T = TypeVar("T")


class JsonBody(AbstractDTO[T], Generic[T]):
    config: ClassVar[DTOConfig] = DTOConfig()
    # what the body decodes to and is documented as; a subclass may set a union
    # (AbstractDTO[...] refuses unions) or override `decode_bytes`
    body_type: ClassVar[Any] = None

    @classmethod
    def decoded_type(cls) -> Any:
        return cls.body_type if cls.body_type is not None else cls.model_type

    def decode_bytes(self, value: bytes) -> Any:
        return decode(value, self.decoded_type())

    def decode_builtins(self, value: dict[str, Any]) -> Any:
        raise NotImplementedError("JsonBody decodes JSON bodies only")

    # -- registration and documentation: no transfer model, the type itself ---

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: type[DTOBackend] | None = None
    ) -> None:
        """Nothing to build: the body is decoded by msgspec into the type itself."""

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(cls.decoded_type()))

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False
