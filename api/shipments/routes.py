"""Shipments: create, read (with ETag), list, timeline, events and the promise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar._openapi.schema_generation import SchemaCreator
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.typing import FieldDefinition
from msgspec import Meta

from api import wire
from api.shell import audit
from api.shell.auth import READERS, Principal, allow
from api.shell.body import JsonBody
from api.shell.clock import utcnow
from api.shell.database import Executor, Pool, transaction
from api.shell.errors import FieldError, Problem, decode, invalid, not_found, problems
from api.shell.health import EVENTS
from api.shell.params import (
    AccountId,
    CarrierCode,
    Cursor,
    IdempotencyKey,
    IfNoneMatch,
    QueryInstant,
    query_instant,
)
from api.shell.responses import json_response
from api.shipments import service, store
from domain import promise
from domain.shipment import (
    CreateShipment,
    PromiseRevision,
    RecordCarrierEvent,
    RecordEvent,
    RevisePromise,
    Shipment,
    normalize_carrier,
    normalize_tracking_number,
)
from domain.status import Status

_encode = msgspec.json.Encoder().encode
T = TypeVar("T")


def matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's If-None-Match: `*`, or a list of tags compared weakly (W/ ignored)."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def etag(version: int, late: bool, at_risk: bool, stale: bool) -> str:
    # late, at-risk and stale turn with the clock, not only with a new version
    return f'"{version}-{int(late)}{int(at_risk)}{int(stale)}"'


def etag_of(shipment: Shipment, now: datetime) -> str:
    return etag(
        shipment.version, shipment.is_late(now), shipment.is_at_risk(now), shipment.is_stale(now, wire.STALE_AFTER)
    )


def etag_of_fields(fields: store.EtagFields, now: datetime) -> str:
    """The same ETag as etag_of gives the whole shipment, from its few fields."""
    return etag(
        fields.version,
        promise.is_late(fields.status, fields.promised_by, fields.delivered_at, fields.has_late_record, now),
        promise.is_at_risk(fields.status, fields.promised_by, fields.estimated_delivery, now),
        promise.is_stale(fields.status, fields.last_movement, now, wire.STALE_AFTER),
    )


async def _nothing(conn: Executor, shipment_id: str) -> None:
    return None


async def readable_shipment(
    request: Request[Any, Any, Any],
    pool: Pool,
    principal: Principal,
    shipment_id: str,
    load: Callable[[Executor, str], Awaitable[T]],
) -> tuple[Shipment, T]:
    """The shipment if this key may read it (a 404 otherwise, whether or not it
    exists) and what `load` reads of it. A key from outside the shipment's
    account (support, admin) reads it in one transaction with its audit row,
    so nothing is answered unrecorded; a customer key reads from the pool, with
    no audit work on its hot path."""
    if not principal.reads_shipments:
        raise not_found()
    if principal.role == "customer":
        shipment = await store.get(pool, shipment_id, principal.account_scope)
        if shipment is None:
            raise not_found()
        return shipment, await load(pool, shipment_id)
    async with transaction(pool) as conn:
        shipment = await store.get(conn, shipment_id, principal.account_scope)
        if shipment is None:
            raise not_found()
        loaded = await load(conn, shipment_id)
        if audit.crosses(principal, shipment.account_id):
            await audit.record(
                conn, audit.access(request, principal), account_id=shipment.account_id, shipment_ids=[shipment.id]
            )
    return shipment, loaded


def feedback_links(request: Request[Any, Any, Any]) -> wire.PublicLinks:
    """The signer of feedback links, loaded when the app starts."""
    links: wire.PublicLinks = request.app.state.feedback_links
    return links


class ShipmentPage(msgspec.Struct):
    items: list[wire.ShipmentOut]
    next_cursor: str | None


class Timeline(msgspec.Struct):
    items: list[wire.EventOut]


class EventsAnswer(msgspec.Struct, kw_only=True):
    results: list[service.ItemResult]
    accepted: int
    duplicate: int
    rejected: int
    # left out for carrier keys, which post events but read no shipment
    shipment: wire.ShipmentOut | msgspec.UnsetType = msgspec.UNSET


class PromiseHistory(msgspec.Struct, kw_only=True):
    promised_by: datetime
    promised_from: datetime | None
    revisions: list[PromiseRevision]


MAX_EVENTS = 1000

ShipmentId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00/]*$")]
ETAG = ResponseHeader(
    name="ETag", documentation_only=True, description="the shipment's version and its late, at-risk and stale flags"
)


class EventsBody(JsonBody[RecordEvent]):
    """One event or a list of 1 to 1000; any invalid event fails the whole request."""

    def decode_bytes(self, value: bytes) -> list[RecordEvent]:
        return decode_events(value)

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        one = schema_creator.for_field_definition(FieldDefinition.from_annotation(RecordEvent))
        return Schema(one_of=[one, Schema(type=OpenAPIType.ARRAY, items=one, min_items=1, max_items=MAX_EVENTS)])


class CarrierBatchBody(JsonBody[RecordCarrierEvent]):
    """Up to 1000 events; each is decoded alone, so one invalid item is rejected
    in the answer and does not stop the others."""

    def decode_bytes(self, value: bytes) -> list[RecordCarrierEvent | list[FieldError]]:
        return [_decode_item(i, item) for i, item in enumerate(decode_list(value))]

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        one = schema_creator.for_field_definition(FieldDefinition.from_annotation(RecordCarrierEvent))
        return Schema(type=OpenAPIType.ARRAY, items=one, max_items=MAX_EVENTS)


class ShipmentController(Controller):
    path = "/v1/shipments"
    tags = ("shipments",)

    @post(
        "/",
        status_code=201,
        summary="Create a shipment (honours Idempotency-Key)",
        guards=[allow("customer", "admin")],
        dto=JsonBody[CreateShipment],
        return_dto=None,
        response_headers=[
            ResponseHeader(name="Location", documentation_only=True, description="the new shipment's path")
        ],
        responses={
            **problems(400, 401, 404, 409, 413, 422, 503),
        },
    )
    async def create_shipment(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        data: JSONBody[CreateShipment],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[wire.ShipmentOut]:
        status, answer, shipment_id = await service.create_shipment(
            pool,
            caller,
            data,
            idempotency_key,
            await request.body(),
            audit.access(request, caller),
            feedback_links(request),
        )
        # the answer is stored encoded, so a repeat with the same Idempotency-Key gets the same bytes
        return json_response(answer, status, {"Location": f"/v1/shipments/{shipment_id}"})

    @get(
        "/{shipment_id:str}",
        summary="One shipment; ETag, 304 on If-None-Match",
        guards=[allow(*READERS)],
        response_headers=[ETAG],
        responses={
            304: ResponseSpec(
                None, description="not modified: the copy with this ETag is current", generate_examples=False
            ),
            **problems(400, 401, 404, 503),
        },
    )
    async def get_shipment(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: ShipmentId,
        if_none_match: IfNoneMatch = None,
    ) -> Response[wire.ShipmentOut]:
        if if_none_match is not None and caller.role == "customer":
            # a conditional poll reads only what the ETag is made of; the whole
            # shipment (a second read) only when it has changed. Other roles
            # read in one transaction with their audit row, below.
            fields = await store.etag_fields(pool, shipment_id, caller.account_id or "")
            if fields is None:
                raise not_found()
            tag = etag_of_fields(fields, utcnow())
            if matches(if_none_match, tag):
                return json_response(b"", 304, {"ETag": tag})  # not modified: no body
        shipment, _ = await readable_shipment(request, pool, caller, shipment_id, _nothing)
        now = utcnow()
        tag = etag_of(shipment, now)
        if if_none_match is not None and matches(if_none_match, tag):
            return json_response(b"", 304, {"ETag": tag})  # not modified: no body
        # encoded here, as the 304 and the create answer are: the same bytes Litestar would make, without its
        # per-response serializer lookup
        answer = wire.shipment_out(shipment, now, with_recipient=True, links=feedback_links(request))
        return json_response(_encode(answer), 200, {"ETag": tag})

    @get(
        "/",
        summary="List shipments, newest first, with keyset pagination",
        guards=[allow(*READERS)],
        responses=problems(400, 401, 404, 503),
    )
    async def list_shipments(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        status: FromQuery[Status | None] = None,
        carrier: CarrierCode = None,
        late: FromQuery[bool | None] = None,
        at_risk: FromQuery[bool | None] = None,
        stale: FromQuery[bool | None] = None,
        reference: Annotated[str | None, QueryParameter(max_length=200, pattern=r"^[^\x00]*$")] = None,
        tracking_number: Annotated[str | None, QueryParameter(max_length=64, pattern=r"^[^\x00]*$")] = None,
        updated_after: QueryInstant = None,
        account_id: AccountId = None,
        include: Annotated[
            Literal["recipient"] | None, QueryParameter(description="`recipient` adds each shipment's recipient")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: Cursor = None,
    ) -> ShipmentPage:
        now = utcnow()
        wanted = store.ShipmentFilter(
            account_id=caller.account_scope or account_id,
            status=status,
            carrier=None if carrier is None else normalize_carrier(carrier),
            reference=reference,
            tracking_number=None if tracking_number is None else normalize_tracking_number(tracking_number),
            updated_after=query_instant("updated_after", updated_after),
            late=late,
            at_risk=at_risk,
            stale=stale,
            before_id=cursor,
        )
        if caller.role == "customer":  # its own account: no audit work on the hot path
            shipments = await store.page(pool, wanted, now, wire.STALE_AFTER, limit + 1)
            more, shipments = len(shipments) > limit, shipments[:limit]
        else:  # the page and its audit rows (one per account answered) commit together
            async with transaction(pool) as conn:
                shipments = await store.page(conn, wanted, now, wire.STALE_AFTER, limit + 1)
                more, shipments = len(shipments) > limit, shipments[:limit]
                touched = audit.by_account((s.account_id, s.id) for s in shipments)
                await audit.record_by_account(
                    conn, audit.access(request, caller), touched, query=audit.query_of(request)
                )
        with_recipient = include == "recipient"
        return ShipmentPage(
            items=[
                wire.shipment_out(s, now, with_recipient=with_recipient, links=feedback_links(request))
                for s in shipments
            ],
            next_cursor=shipments[-1].id if more else None,
        )

    @get(
        "/{shipment_id:str}/events",
        summary="The timeline, oldest first",
        guards=[allow(*READERS)],
        responses=problems(400, 401, 404, 503),
    )
    async def get_timeline(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: ShipmentId,
    ) -> Timeline:
        _, events = await readable_shipment(request, pool, caller, shipment_id, store.timeline)
        return Timeline(items=[wire.event_out(e, received_at) for e, received_at in events])

    @post(
        "/{shipment_id:str}/events",
        summary="Record one event or a list of them",
        description="201 when at least one event was new; 200 when every one was a duplicate.",
        guards=[allow("customer", "carrier", "admin")],
        dto=EventsBody,
        return_dto=None,
        status_code=201,
        responses={
            200: ResponseSpec(
                EventsAnswer, description="every event was already recorded (duplicates)", generate_examples=False
            ),
            **problems(400, 401, 404, 413, 503),
        },
    )
    async def post_events(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: ShipmentId,
        data: JSONBody[list[RecordEvent]],
    ) -> Response[EventsAnswer]:
        result, shipment = await service.record_events(pool, caller, shipment_id, data, audit.access(request, caller))
        count_events(result)
        answer = EventsAnswer(
            results=result.results,
            accepted=result.accepted,
            duplicate=result.duplicate,
            rejected=result.rejected,
            shipment=(
                wire.shipment_out(shipment, utcnow(), with_recipient=True, links=feedback_links(request))
                if caller.reads_shipments
                else msgspec.UNSET
            ),
        )
        return Response(answer, status_code=201 if result.accepted else 200)

    @put(
        "/{shipment_id:str}/promise",
        summary="Revise the delivery promise, with a reason",
        guards=[allow("customer", "admin")],
        dto=JsonBody[RevisePromise],
        return_dto=None,
        responses=problems(400, 401, 404, 409, 413, 503),
    )
    async def revise_promise(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: ShipmentId,
        data: JSONBody[RevisePromise],
    ) -> wire.ShipmentOut:
        shipment = await service.revise_promise(pool, caller, shipment_id, data, audit.access(request, caller))
        return wire.shipment_out(shipment, utcnow(), with_recipient=True, links=feedback_links(request))

    @get(
        "/{shipment_id:str}/promise",
        summary="The promise in force and its revisions, oldest first",
        guards=[allow(*READERS)],
        responses=problems(400, 401, 404, 503),
    )
    async def get_promise(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: ShipmentId,
    ) -> PromiseHistory:
        shipment, revisions = await readable_shipment(request, pool, caller, shipment_id, store.revisions)
        return PromiseHistory(
            promised_by=shipment.promised_by, promised_from=shipment.promised_from, revisions=revisions
        )


def count_events(result: service.BatchResult) -> None:
    for outcome in ("accepted", "duplicate", "rejected"):
        if count := getattr(result, outcome):
            EVENTS.labels(outcome).inc(count)


def decode_events(body: bytes) -> list[RecordEvent]:
    """One event or a list of them; any invalid event fails the whole request."""
    raw = decode(body, msgspec.Raw)
    if bytes(raw).lstrip()[:1] != b"[":
        return [decode(body, RecordEvent)]
    items = decode_list(body)
    if not items:
        raise invalid([FieldError("$", "no events given")])
    return [decode(item, RecordEvent, prefix=f"$[{i}]") for i, item in enumerate(items)]


def decode_list(body: bytes) -> list[msgspec.Raw]:
    items = decode(body, list[msgspec.Raw])
    if len(items) > MAX_EVENTS:
        raise invalid([FieldError("$", f"at most {MAX_EVENTS} events per request, got {len(items)}")])
    return items


class EventBatchController(Controller):
    path = "/v1/events"
    tags = ("events",)

    @post(
        "/",
        status_code=200,
        summary="A batch of events addressed by carrier and tracking number",
        description="Up to 1000 events; each item is answered accepted, duplicate or rejected (with its errors).",
        guards=[allow("carrier", "customer", "admin")],
        dto=CarrierBatchBody,
        return_dto=None,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def post_event_batch(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        data: JSONBody[list[RecordCarrierEvent | list[FieldError]]],
    ) -> service.BatchResult:
        result = await service.record_carrier_events(pool, caller, data, audit.access(request, caller))
        count_events(result)
        return result


def _decode_item(index: int, item: msgspec.Raw) -> RecordCarrierEvent | list[FieldError]:
    try:
        return decode(item, RecordCarrierEvent, prefix=f"$[{index}]")
    except Problem as problem:
        return problem.errors or [FieldError(f"$[{index}]", problem.detail or problem.title)]
