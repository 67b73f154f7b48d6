"""Shipments: create, read (with ETag), list, timeline, events and the promise."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from api import wire
from api.shell.auth import Principal, authenticate
from api.shell.clock import utcnow
from api.shell.errors import FieldError, Problem, decode, invalid, not_found
from api.shell.health import EVENTS
from api.shell.openapi import documented_body
from api.shell.responses import aware, cursor_for, cursor_id, json_response
from api.shipments import service, store
from domain.shipment import (
    CreateShipment,
    PromiseRevision,
    RecordCarrierEvent,
    RecordEvent,
    RevisePromise,
    Shipment,
)
from domain.status import TERMINAL, Status

_encode = msgspec.json.Encoder().encode
_TERMINAL = [s.value for s in TERMINAL]


def etag_of(shipment: Shipment, now: datetime) -> str:
    # late, at-risk and stale turn with the clock, not only with a new version
    flags = (shipment.is_late(now), shipment.is_at_risk(now), shipment.is_stale(now, wire.STALE_AFTER))
    return f'"{shipment.version}-{"".join(str(int(flag)) for flag in flags)}"'


async def readable_shipment(request: Request, principal: Principal, shipment_id: str) -> Shipment:
    """The shipment if this key may read it; a 404 otherwise, whether or not it exists."""
    if not principal.reads_shipments:
        raise not_found()
    shipment = await store.get(request.app.state.pool, shipment_id, principal.account_scope)
    if shipment is None:
        raise not_found()
    if principal.role == "support" and principal.account_id != shipment.account_id:
        await request.app.state.pool.execute(
            "insert into audit_log (key_id, action, account_id, shipment_id) values ($1, $2, $3, $4)",
            principal.key_id,
            f"{request.method} {request.url.path}",
            shipment.account_id,
            shipment.id,
        )
    return shipment


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


class ShipmentController(Controller):
    path = "/v1/shipments"
    tags = ("shipments",)

    @post(
        "/",
        status_code=201,
        summary="Create a shipment (honours Idempotency-Key)",
        operation_class=documented_body(CreateShipment),
    )
    async def create_shipment(self, request: Request) -> Response[wire.ShipmentOut]:
        principal = await authenticate(request)
        body = await request.body()
        command = decode(body, CreateShipment)
        key = request.headers.get("idempotency-key")
        if key is not None and not (1 <= len(key) <= 200):
            raise invalid([FieldError("header.Idempotency-Key", "must be 1 to 200 characters")])
        status, answer, shipment_id = await service.create_shipment(
            request.app.state.pool, principal, command, key, body
        )
        return json_response(answer, status, {"Location": f"/v1/shipments/{shipment_id}"})

    @get("/{shipment_id:str}", summary="One shipment; ETag, 304 on If-None-Match")
    async def get_shipment(self, request: Request, shipment_id: FromPath[str]) -> Response[wire.ShipmentOut]:
        principal = await authenticate(request)
        shipment = await readable_shipment(request, principal, shipment_id)
        now = utcnow()
        etag = etag_of(shipment, now)
        if request.headers.get("if-none-match") == etag:
            return Response(content=b"", status_code=304, headers={"ETag": etag})
        out = wire.shipment_out(shipment, now, with_recipient=principal.reads_shipments)
        return json_response(_encode(out), headers={"ETag": etag})

    @get("/", summary="List shipments, newest first, with keyset pagination")
    async def list_shipments(
        self,
        request: Request,
        status: FromQuery[Status | None] = None,
        carrier: FromQuery[str | None] = None,
        late: FromQuery[bool | None] = None,
        at_risk: FromQuery[bool | None] = None,
        stale: FromQuery[bool | None] = None,
        reference: FromQuery[str | None] = None,
        tracking_number: FromQuery[str | None] = None,
        updated_after: FromQuery[datetime | None] = None,
        account_id: FromQuery[str | None] = None,
        include: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> Response[ShipmentPage]:
        principal = await authenticate(request)
        if not principal.reads_shipments:
            raise not_found("endpoint")
        now = utcnow()
        where, args = [], []

        def param(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        scope = principal.account_scope or account_id
        if scope is not None:
            where.append(f"s.account_id = {param(scope)}")
        if status is not None:
            where.append(f"s.status = {param(status.value)}")
        if carrier is not None:
            where.append(f"s.carrier = {param(carrier.lower())}")
        if reference is not None:
            where.append(f"s.reference = {param(reference)}")
        if tracking_number is not None:
            where.append(f"s.tracking_number = {param(tracking_number.replace(' ', '').upper())}")
        if aware("updated_after", updated_after) is not None:
            where.append(f"s.updated_at > {param(updated_after)}")
        # These restate domain.promise.is_late / is_at_risk / is_stale in SQL, with the
        # same `now`; tests/integration check that the two agree.
        if late is not None:
            t, n = param(_TERMINAL), param(now)
            clause = (
                f"(s.late or (s.delivered_at is not null and s.delivered_at > s.promised_by)"
                f" or (s.delivered_at is null and s.status <> all({t}) and {n} > s.promised_by))"
            )
            where.append(clause if late else f"not {clause}")
        if at_risk is not None:
            t, n = param(_TERMINAL), param(now)
            clause = (
                f"(s.status <> all({t}) and s.estimated_delivery is not null"
                f" and {n} <= s.promised_by and s.estimated_delivery > s.promised_by)"
            )
            where.append(clause if at_risk else f"not {clause}")
        if stale is not None:
            t, since = param(_TERMINAL), param(now - wire.STALE_AFTER)
            clause = f"(s.status <> all({t}) and coalesce(s.last_event_at, s.created_at) < {since})"
            where.append(clause if stale else f"not {clause}")
        if cursor is not None:
            where.append(f"s.id < {param(cursor_id(cursor))}")
        sql = store.SELECT_SHIPMENT
        if where:
            sql += "where " + " and ".join(where)
        sql += f" order by s.id desc limit {param(limit + 1)}"
        rows = await request.app.state.pool.fetch(sql, *args)
        shipments = [store.shipment_from_row(r) for r in rows[:limit]]
        with_recipient = include == "recipient" and principal.reads_shipments
        page = ShipmentPage(
            items=[wire.shipment_out(s, now, with_recipient=with_recipient) for s in shipments],
            next_cursor=cursor_for(shipments[-1].id) if len(rows) > limit else None,
        )
        return json_response(_encode(page))

    @get("/{shipment_id:str}/events", summary="The timeline, oldest first")
    async def get_timeline(self, request: Request, shipment_id: FromPath[str]) -> Response[Timeline]:
        principal = await authenticate(request)
        await readable_shipment(request, principal, shipment_id)
        events = await store.timeline(request.app.state.pool, shipment_id)
        timeline = Timeline(items=[wire.event_out(e, received_at) for e, received_at in events])
        return json_response(_encode(timeline))

    @post(
        "/{shipment_id:str}/events",
        summary="Record one event or a list of them",
        operation_class=documented_body(RecordEvent | list[RecordEvent]),
    )
    async def post_events(self, request: Request, shipment_id: FromPath[str]) -> Response[EventsAnswer]:
        principal = await authenticate(request)
        body = await request.body()
        commands = decode_events(body)
        result, shipment = await service.record_events(request.app.state.pool, principal, shipment_id, commands)
        count_events(result)
        answer = EventsAnswer(
            results=result.results,
            accepted=result.accepted,
            duplicate=result.duplicate,
            rejected=result.rejected,
            shipment=(
                wire.shipment_out(shipment, utcnow(), with_recipient=True)
                if principal.reads_shipments
                else msgspec.UNSET
            ),
        )
        return json_response(_encode(answer), 201 if result.accepted else 200)

    @put(
        "/{shipment_id:str}/promise",
        summary="Revise the delivery promise, with a reason",
        operation_class=documented_body(RevisePromise),
    )
    async def revise_promise(self, request: Request, shipment_id: FromPath[str]) -> Response[wire.ShipmentOut]:
        principal = await authenticate(request)
        command = decode(await request.body(), RevisePromise)
        shipment = await service.revise_promise(request.app.state.pool, principal, shipment_id, command)
        out = wire.shipment_out(shipment, utcnow(), with_recipient=principal.reads_shipments)
        return json_response(_encode(out))

    @get("/{shipment_id:str}/promise", summary="The promise in force and its revisions, oldest first")
    async def get_promise(self, request: Request, shipment_id: FromPath[str]) -> Response[PromiseHistory]:
        principal = await authenticate(request)
        shipment = await readable_shipment(request, principal, shipment_id)
        rows = await request.app.state.pool.fetch(store.REVISIONS, shipment_id)
        history = PromiseHistory(
            promised_by=shipment.promised_by,
            promised_from=shipment.promised_from,
            revisions=[store.revision_from_row(r) for r in rows],
        )
        return json_response(_encode(history))


MAX_EVENTS = 1000


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
        operation_class=documented_body(
            list[RecordCarrierEvent], "up to 1000 events; each is accepted, duplicate or rejected"
        ),
    )
    async def post_event_batch(self, request: Request) -> Response[service.BatchResult]:
        principal = await authenticate(request)
        if principal.role not in ("carrier", "customer", "admin"):
            raise not_found("endpoint")
        items = decode_list(await request.body())
        commands = [_decode_item(i, item) for i, item in enumerate(items)]
        result = await service.record_carrier_events(request.app.state.pool, principal, commands)
        count_events(result)
        return json_response(_encode(result))


def _decode_item(index: int, item: msgspec.Raw) -> RecordCarrierEvent | list[FieldError]:
    try:
        return decode(item, RecordCarrierEvent, prefix=f"$[{index}]")
    except Problem as problem:
        return problem.errors or [FieldError(f"$[{index}]", problem.detail or problem.title)]
