"""Inbound carrier payloads and the integrations that sign them:
POST /v1/inbound/{source}, GET /v1/inbound, POST /v1/inbound/{id}/replay,
POST and GET /v1/integrations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath, JSONBody, QueryParameter

from api.inbound import service, store
from api.inbound.adapters.base import ItemError
from api.inbound.sources import SIGNED, SOURCES, new_secret, verify
from api.shell.auth import Principal, allow, authenticate, unauthorized
from api.shell.body import JsonBody
from api.shell.clock import utcnow
from api.shell.database import Pool
from api.shell.errors import FieldError, Problem, invalid, named_not_found, problems
from api.shell.ids import new_id
from api.shell.params import AccountId, Cursor

DEFAULT_MAX_BODY = 4 * 1024 * 1024

SourceName = Literal[
    "aftership",
    "canada_post",
    "correos",
    "correos_express",
    "ctt_express",
    "dhl",
    "dhl_express",
    "easypost",
    "fedex",
    "gls",
    "ups",
    "usps",
]


@dataclass
class PayloadOperation(Operation):
    """The body is the source's own document, read as bytes (not by a DTO):
    documented here as what it is, JSON or XML as the source sends it."""

    def __post_init__(self) -> None:
        if self.request_body is None:
            self.request_body = RequestBody(
                required=True,
                description="the source's own payload, unchanged, at most ONTIME_INBOUND_MAX_BODY_BYTES (4 MiB)",
                content={
                    "application/json": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                    "application/xml": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                },
            )


PayloadId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_]+$")]
IntegrationParam = Annotated[
    str | None,
    QueryParameter(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_]+$",
        description="an integration's id: the body is then authenticated by the source's signature, not a key",
    ),
]


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        "body-too-large",
        "Request body too large",
        f"an inbound payload may be at most {limit} bytes ({limit / (1024 * 1024):g} MiB); split it",
        [FieldError("body", f"larger than {limit} bytes")],
    )


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def signed_principal(
    pool: Pool, request: Request[Any, Any, Any], source: str, integration_id: str, body: bytes
) -> Principal:
    """The integration's account, if the body carries the source's signature made
    with the integration's secret; a 401 otherwise (and nothing is stored)."""
    row = await pool.fetchrow(store.GET_INTEGRATION, integration_id)
    signature = SOURCES[source].signature
    if row is None or row["source"] != source or signature is None:
        raise unauthorized(f"no {source} integration {integration_id!r}")
    if not verify(SOURCES[source], row["secret"], body, request.headers.get(signature.header)):
        raise unauthorized(
            f"the {signature.header} header is not the signature of this body with the integration's secret"
        )
    return Principal(key_id=f"integration:{row['id']}", role="customer", account_id=row["account_id"], carrier=None)


class PayloadOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    account_id: str | None
    source: str
    integration_id: str | None
    received_at: datetime
    content_type: str | None
    events: int
    matched: int
    unmatched: int
    errors: list[ItemError]
    # the body as it came (UTF-8; bytes that are not are replaced), with ?include=body
    body: str | msgspec.UnsetType = msgspec.UNSET


class PayloadPage(msgspec.Struct):
    items: list[PayloadOut]
    next_cursor: str | None


class NewIntegration(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    source: Literal["aftership", "easypost"]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")] | None = None
    # an admin key names the account; a customer key's is its own
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\x00]*$")] | None = None


class IntegrationOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    account_id: str
    source: str
    name: str | None
    created_at: datetime
    # where the source posts: the path and the integration's id
    webhook_path: str
    # shown once, when the integration is created
    secret: str | msgspec.UnsetType = msgspec.UNSET


class IntegrationPage(msgspec.Struct):
    items: list[IntegrationOut]
    next_cursor: str | None


def integration_out(row: Any, secret: str | None = None) -> IntegrationOut:
    return IntegrationOut(
        id=row["id"],
        account_id=row["account_id"],
        source=row["source"],
        name=row["name"],
        created_at=row["created_at"],
        webhook_path=f"/v1/inbound/{row['source']}?integration={row['id']}",
        secret=secret if secret is not None else msgspec.UNSET,
    )


def payload_out(row: Any, with_body: bool) -> PayloadOut:
    return PayloadOut(
        id=row["id"],
        account_id=row["account_id"],
        source=row["source"],
        integration_id=row["integration_id"],
        received_at=row["received_at"],
        content_type=row["content_type"],
        events=row["events"],
        matched=row["matched"],
        unmatched=row["unmatched"],
        errors=msgspec.json.decode(row["errors"], type=list[ItemError]),
        body=bytes(row["body"]).decode("utf-8", "replace") if with_body else msgspec.UNSET,
    )


class InboundController(Controller):
    path = "/v1/inbound"
    tags = ("inbound",)

    @post(
        "/{source:str}",
        summary="A carrier's or aggregator's own tracking payload, as it sends it",
        description=(
            "Authenticated by a carrier, customer or admin key, or, for a source that signs its webhooks "
            f"({', '.join(SIGNED)}), by `?integration=ID` and the source's signature header. The payload is kept "
            "(GET /v1/inbound) and each event it became is answered: accepted, duplicate, or unmatched (no "
            "shipment has the tracking number; kept, and replayable once one does). A body that cannot be read "
            "is a 400 and is not kept; a bad signature is a 401 and is not kept."
        ),
        status_code=201,
        request_max_body_size=None,  # read_body enforces the inbound limit and names it
        operation_class=PayloadOperation,
        security=[{"apiKey": []}, {}],
        responses=problems(400, 401, 404, 413, 503),
    )
    async def post_payload(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        source: FromPath[SourceName],
        integration: IntegrationParam = None,
    ) -> service.InboundAnswer:
        known = service.source_or_404(source)
        body = await read_body(request, getattr(request.app.state, "inbound_max_body_bytes", DEFAULT_MAX_BODY))
        if integration is not None:
            if known.signature is None:
                raise invalid(
                    [FieldError("query.integration", f"{source} does not sign its payloads; send a key")],
                    "invalid query parameter",
                )
            principal = await signed_principal(pool, request, source, integration, body)
        else:
            principal = await authenticate(request)
            if principal.role not in ("carrier", "customer", "admin"):
                raise Problem(404, "not-found", "Not found", "no such endpoint")
        return await service.ingest(
            pool, principal, source, body, request.headers.get("content-type"), integration_id=integration
        )

    @get(
        "/",
        summary="The account's inbound payloads, newest first, with keyset pagination",
        guards=[allow("customer", "admin")],
        responses=problems(400, 401, 404, 503),
    )
    async def list_payloads(
        self,
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        account_id: AccountId = None,
        source: Annotated[str | None, QueryParameter(max_length=32, pattern=r"^[a-z_]+$")] = None,
        include: Annotated[Literal["body"] | None, QueryParameter(description="`body` adds each raw body")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: Cursor = None,
    ) -> PayloadPage:
        scope = caller.account_scope or account_id
        columns = store.PAYLOAD_COLUMNS + (", body" if include == "body" else "")
        rows = await pool.fetch(
            store.LIST_PAYLOADS.replace(store.PAYLOAD_COLUMNS, columns, 1), scope, cursor, source, limit + 1
        )
        more, rows = len(rows) > limit, rows[:limit]
        return PayloadPage(
            items=[payload_out(r, include == "body") for r in rows], next_cursor=rows[-1]["id"] if more else None
        )

    @post(
        "/{payload_id:str}/replay",
        summary="Read a kept payload again with today's adapter; adds only what is not there yet",
        guards=[allow("customer", "admin")],
        status_code=200,
        responses=problems(400, 401, 404, 503),
    )
    async def replay(
        self, pool: NamedDependency[Pool], caller: NamedDependency[Principal], payload_id: FromPath[PayloadId]
    ) -> service.InboundAnswer:
        return await service.replay(pool, caller, payload_id)


class IntegrationController(Controller):
    path = "/v1/integrations"
    tags = ("inbound",)

    @post(
        "/",
        summary="Connect a source that signs its webhooks; the secret is shown once",
        guards=[allow("customer", "admin")],
        dto=JsonBody[NewIntegration],
        return_dto=None,
        status_code=201,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def create_integration(
        self, pool: NamedDependency[Pool], caller: NamedDependency[Principal], data: JSONBody[NewIntegration]
    ) -> IntegrationOut:
        if caller.role == "customer":
            if data.account_id is not None and data.account_id != caller.account_id:
                raise named_not_found("$.account_id", "account")
            account_id = caller.account_id
        else:
            if data.account_id is None:
                raise invalid([FieldError("$.account_id", "an admin key must name the account")])
            account_id = data.account_id
        if account_id is None or await pool.fetchval("select 1 from accounts where id = $1", account_id) is None:
            raise named_not_found("$.account_id", "account")
        secret = new_secret()
        integration_id = new_id("int")
        now = utcnow()
        await pool.execute(store.INSERT_INTEGRATION, integration_id, account_id, data.source, data.name, secret, now)
        row = {
            "id": integration_id,
            "account_id": account_id,
            "source": data.source,
            "name": data.name,
            "created_at": now,
        }
        return integration_out(row, secret)

    @get(
        "/",
        summary="The account's integrations, newest first (never their secrets)",
        guards=[allow("customer", "admin")],
        responses=problems(400, 401, 404, 503),
    )
    async def list_integrations(
        self,
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        account_id: AccountId = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        cursor: Cursor = None,
    ) -> IntegrationPage:
        rows = await pool.fetch(store.LIST_INTEGRATIONS, caller.account_scope or account_id, cursor, limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        return IntegrationPage(items=[integration_out(r) for r in rows], next_cursor=rows[-1]["id"] if more else None)
