"""The change feed, for clients that poll: every change after a seq, in seq order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, Union

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api import wire
from api.changes import log as change_log
from api.shell import audit
from api.shell.auth import READERS, Principal, allow
from api.shell.database import Pool, transaction
from api.shell.errors import problems
from api.shell.params import MAX_SEQ, AccountId
from api.shell.responses import json_response


def _with_seq(change: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A change as the feed carries it: the change log's body with its `seq`."""
    return msgspec.defstruct(
        change.__name__.removesuffix("Change") + "Item",
        [("seq", int)],
        bases=(change,),
        kw_only=True,
        tag_field="type",
        tag=change.__struct_config__.tag,
    )


if TYPE_CHECKING:
    # a Union built at run time is no type to mypy; every item is one of them, a Struct
    ChangeItem: TypeAlias = msgspec.Struct
else:
    # built from wire.CHANGES, so the document names each kind of change and its fields
    ChangeItem = Union[tuple(_with_seq(c) for c in wire.CHANGES)]  # noqa: UP007 (a Union built from wire.CHANGES)


class ChangePage(msgspec.Struct):
    items: list[ChangeItem]
    next_after: int


class ChangeController(Controller):
    path = "/v1/changes"
    tags = ("changes",)

    @get(
        "/",
        summary="Changes after `after`, oldest first; resume from next_after",
        guards=[allow(*READERS)],
        responses=problems(400, 401, 404, 503),
    )
    async def list_changes(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        after: Annotated[
            int, QueryParameter(ge=0, le=MAX_SEQ, description="the last seq seen (0: from the start)")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        account_id: AccountId = None,
    ) -> Response[ChangePage]:
        scope = caller.account_scope or account_id
        if caller.role == "customer" and scope is not None:  # its own account: no audit work on the hot path
            items, next_after = await change_log.page_in_account(pool, scope, after, limit)
        else:  # the page and its audit rows (one per account answered) commit together
            async with transaction(pool) as conn:
                rows = await change_log.after(conn, scope, after, limit)
                answered = audit.by_account((row.account_id, row.shipment_id) for row in rows)
                touched = {account: list(dict.fromkeys(ids)) for account, ids in answered.items()}
                await audit.record_by_account(
                    conn, audit.access(request, caller), touched, query=audit.query_of(request)
                )
            # the bodies are stored encoded: spliced, not decoded and encoded again
            items = b",".join(change_log.with_seq(row.seq, row.body) for row in rows)
            next_after = rows[-1].seq if rows else after
        return json_response(b'{"items":[%s],"next_after":%d}' % (items, next_after))
