"""Lateness records and the monthly on-time report."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from api.lateness import store as reports
from api.shell import audit
from api.shell.auth import READERS, Principal, allow
from api.shell.clock import utcnow
from api.shell.database import Pool, transaction
from api.shell.errors import FieldError, invalid, problems
from api.shell.params import AccountId, CarrierCode, Cursor, QueryInstant, query_instant
from domain.shipment import normalize_carrier

# months of the years whose instants ontime stores (1970 to 2199)
MONTH = r"^(19[7-9][0-9]|2[01][0-9]{2})-(0[1-9]|1[0-2])$"


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
    guards = (allow(*READERS),)

    @get(
        "/v1/late-deliveries",
        summary="Lateness records, newest first, with keyset pagination",
        responses=problems(400, 401, 404, 503),
    )
    async def list_late_deliveries(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        carrier: CarrierCode = None,
        account_id: AccountId = None,
        # `state` on the wire; the name is reserved in handler signatures
        record_state: Annotated[Literal["open", "closed"] | None, QueryParameter(name="state")] = None,
        promised_from: QueryInstant = None,
        promised_before: QueryInstant = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        cursor: Cursor = None,
    ) -> LateDeliveryPage:
        load = partial(
            reports.late_deliveries,
            account_id=caller.account_scope or account_id,
            carrier=None if carrier is None else normalize_carrier(carrier),
            open_only=None if record_state is None else record_state == "open",
            promised_from=query_instant("promised_from", promised_from),
            promised_before=query_instant("promised_before", promised_before),
            before_id=cursor,
            limit=limit + 1,
        )
        if caller.role == "customer":  # its own account: no audit work on the hot path
            items = await load(pool)
        else:  # the page and its audit rows (one per account answered) commit together
            async with transaction(pool) as conn:
                items = await load(conn)
                answered = audit.by_account((item.account_id, item.shipment_id) for item in items[:limit])
                await audit.record_by_account(
                    conn, audit.access(request, caller), answered, query=audit.query_of(request)
                )
        return LateDeliveryPage(items=items[:limit], next_cursor=items[limit - 1].id if len(items) > limit else None)

    @get(
        "/v1/reports/on-time",
        summary="On-time rate, counts and delays for a month, grouped",
        responses=problems(400, 401, 404, 503),
    )
    async def on_time_report(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        month: Annotated[str, QueryParameter(pattern=MONTH, description="the month, YYYY-MM (due dates in it)")],
        group_by: FromQuery[Literal["carrier", "lane", "account"]] = "carrier",
        account_id: AccountId = None,
        carrier: CarrierCode = None,
    ) -> reports.OnTimeReport:
        scope = caller.account_scope or account_id
        load = partial(
            reports.on_time_report,
            month=parse_month(month),
            group_by=group_by,
            now=utcnow(),
            account_id=scope,
            carrier=None if carrier is None else normalize_carrier(carrier),
        )
        if caller.role != "customer":
            # a report over one account or all of them: one row, the account asked for (or none),
            # committed before the report is read, so no report goes out unrecorded
            async with transaction(pool) as conn:
                await audit.record(conn, audit.access(request, caller), account_id=scope, query=audit.query_of(request))
        return await load(pool)  # its queries at once, each on a connection of its own
