"""Lateness records and the monthly on-time report."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter

from api.lateness import store as reports
from api.shell.auth import authenticate
from api.shell.clock import utcnow
from api.shell.database import pool_of
from api.shell.errors import FieldError, invalid, not_found
from api.shell.responses import aware, cursor_for, cursor_id, json_response

_encode = msgspec.json.Encoder().encode

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


class LateDeliveryPage(msgspec.Struct):
    items: list[reports.LateDeliveryRecord]
    next_cursor: str | None


def parse_month(value: str) -> date:
    try:
        year, month = value.split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise invalid([FieldError("query.month", "a month as YYYY-MM")]) from None


class ReportController(Controller):
    tags = ("lateness",)

    @get("/v1/late-deliveries", summary="Lateness records, newest first, with keyset pagination")
    async def list_late_deliveries(
        self,
        request: Request[Any, Any, State],
        carrier: FromQuery[str | None] = None,
        account_id: FromQuery[str | None] = None,
        # `state` on the wire; the name is reserved in handler signatures
        record_state: Annotated[Literal["open", "closed"] | None, QueryParameter(name="state")] = None,
        promised_from: FromQuery[datetime | None] = None,
        promised_before: FromQuery[datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        cursor: FromQuery[str | None] = None,
    ) -> Response[LateDeliveryPage]:
        principal = await authenticate(request)
        if not principal.reads_shipments:
            raise not_found("endpoint")
        items = await reports.late_deliveries(
            pool_of(request.app),
            account_id=principal.account_scope or account_id,
            carrier=None if carrier is None else carrier.lower(),
            open_only=None if record_state is None else record_state == "open",
            promised_from=aware("promised_from", promised_from),
            promised_before=aware("promised_before", promised_before),
            before_id=None if cursor is None else cursor_id(cursor),
            limit=limit + 1,
        )
        page = LateDeliveryPage(
            items=items[:limit], next_cursor=cursor_for(items[limit - 1].id) if len(items) > limit else None
        )
        return json_response(_encode(page))

    @get("/v1/reports/on-time", summary="On-time rate, counts and delays for a month, grouped")
    async def on_time_report(
        self,
        request: Request[Any, Any, State],
        month: Annotated[str, QueryParameter(pattern=MONTH)],
        group_by: FromQuery[Literal["carrier", "lane", "account"]] = "carrier",
        account_id: FromQuery[str | None] = None,
        carrier: FromQuery[str | None] = None,
    ) -> Response[reports.OnTimeReport]:
        principal = await authenticate(request)
        if not principal.reads_shipments:
            raise not_found("endpoint")
        report = await reports.on_time_report(
            pool_of(request.app),
            parse_month(month),
            group_by,
            utcnow(),
            account_id=principal.account_scope or account_id,
            carrier=None if carrier is None else carrier.lower(),
        )
        return json_response(_encode(report))
