"""The change feed, for clients that poll: every change after a seq, in seq order."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery, QueryParameter

from api.changes import log as change_log
from api.shell.auth import authenticate
from api.shell.errors import not_found
from api.shell.responses import json_response


class ChangeController(Controller):
    path = "/v1/changes"
    tags = ("changes",)

    @get("/", summary="Changes after `after`, oldest first; resume from next_after")
    async def list_changes(
        self,
        request: Request,
        after: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        account_id: FromQuery[str | None] = None,
    ) -> Response:
        principal = await authenticate(request)
        if not principal.reads_shipments:
            raise not_found("endpoint")
        scope = principal.account_scope or account_id
        rows = await change_log.after(request.app.state.pool, scope, after, limit)
        items = b",".join(change_log.with_seq(seq, body) for seq, body in rows)
        next_after = rows[-1][0] if rows else after
        return json_response(b'{"items":[%s],"next_after":%d}' % (items, next_after))
