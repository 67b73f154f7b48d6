"""GET /v1/audit for admin keys; GET /v1/access-log for a customer key: who from
outside its account read or wrote its shipments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.audit import store
from api.shell.auth import Principal, allow
from api.shell.database import Pool
from api.shell.errors import problems
from api.shell.params import TEXT_PATTERN, QueryInstant, query_instant

MAX_ID = 2**63 - 1
AuditCursor = Annotated[
    int | None, QueryParameter(ge=1, le=MAX_ID, description="`next_cursor` of the previous page (an audit row id)")
]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Text = Annotated[str | None, QueryParameter(min_length=1, max_length=200, pattern=TEXT_PATTERN)]


class AuditEntry(msgspec.Struct, kw_only=True):
    """One access by a key outside the account (or an admin action)."""

    id: int
    at: datetime
    key_id: str
    key_name: str | None
    role: str | None
    action: str
    account_id: str | None
    shipment_ids: list[str]
    query: str | None
    client_addr: str | None
    user_agent: str | None


class AuditPage(msgspec.Struct):
    items: list[AuditEntry]
    next_cursor: int | None


class AccessEntry(msgspec.Struct, kw_only=True):
    """Someone from outside the account (support or an admin) read or changed
    its shipments. The staff member's key name and role are shown; their key
    id, address and user agent are not: internal details that identify staff
    machines and networks, not the account's business."""

    id: int
    at: datetime
    key_name: str | None
    role: str | None
    action: str
    shipment_ids: list[str]


class AccessPage(msgspec.Struct):
    items: list[AccessEntry]
    next_cursor: int | None


def _next(rows: list[store.AuditRow], limit: int) -> int | None:
    return rows[limit - 1].id if len(rows) > limit else None


class AuditController(Controller):
    tags = ("audit",)

    @get(
        "/v1/audit",
        summary="The audit log, newest first, with keyset pagination (admin keys)",
        guards=[allow("admin")],
        responses=problems(400, 401, 404, 503),
    )
    async def list_audit(
        self,
        pool: NamedDependency[Pool],
        key_id: Text = None,
        account_id: Text = None,
        shipment_id: Text = None,
        role: Annotated[Literal["customer", "carrier", "support", "admin"] | None, QueryParameter()] = None,
        action: Annotated[
            str | None,
            QueryParameter(
                min_length=1, max_length=200, pattern=TEXT_PATTERN, description="a prefix, e.g. `GET /v1/shipments`"
            ),
        ] = None,
        since: QueryInstant = None,
        until: QueryInstant = None,
        limit: Limit = 100,
        cursor: AuditCursor = None,
    ) -> AuditPage:
        wanted = store.AuditFilter(
            key_id=key_id,
            account_id=account_id,
            shipment_id=shipment_id,
            role=role,
            action_prefix=action,
            since=query_instant("since", since),
            until=query_instant("until", until),
            before_id=cursor,
        )
        rows = await store.page(pool, wanted, limit + 1)
        items = [AuditEntry(**msgspec.structs.asdict(row) | {"shipment_ids": row.shipment_ids or []}) for row in rows]
        return AuditPage(items=items[:limit], next_cursor=_next(rows, limit))

    @get(
        "/v1/access-log",
        summary="Who from outside this account read or changed its shipments, newest first (customer keys)",
        guards=[allow("customer")],
        responses=problems(400, 401, 404, 503),
    )
    async def list_access(
        self,
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: Text = None,
        since: QueryInstant = None,
        until: QueryInstant = None,
        limit: Limit = 100,
        cursor: AuditCursor = None,
    ) -> AccessPage:
        wanted = store.AuditFilter(
            account_id=caller.account_id,
            shipment_id=shipment_id,
            since=query_instant("since", since),
            until=query_instant("until", until),
            before_id=cursor,
        )
        if caller.account_id is None:  # a customer key always has its account; none: nothing of anyone's
            return AccessPage(items=[], next_cursor=None)
        rows = await store.page(pool, wanted, limit + 1)
        items = [
            AccessEntry(
                id=row.id,
                at=row.at,
                key_name=row.key_name,
                role=row.role,
                action=row.action,
                shipment_ids=row.shipment_ids or [],
            )
            for row in rows
        ]
        return AccessPage(items=items[:limit], next_cursor=_next(rows, limit))
