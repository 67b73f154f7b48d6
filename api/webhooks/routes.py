"""/v1/webhooks: an account's endpoints, their secrets, replays and delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from msgspec import Meta

from api.shell.auth import Principal, allow
from api.shell.body import JsonBody
from api.shell.database import Pool
from api.shell.errors import problems
from api.shell.params import MAX_SEQ, AccountId, Cursor
from api.webhooks import service

WebhookId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00/]*$")]


class WebhookController(Controller):
    path = "/v1/webhooks"
    tags = ("webhooks",)
    guards = [allow("customer", "admin")]  # noqa: RUF012 (Litestar's own attribute)

    @post(
        "/",
        summary="Add an endpoint: changes are POSTed to it, signed, in seq order; its secret is shown once",
        description=(
            "The URL must be https and resolve to public addresses only (unless ONTIME_WEBHOOK_ALLOW_PRIVATE=true). "
            "Deliveries start with the account's next change; replay reaches back."
        ),
        dto=JsonBody[service.NewWebhook],
        return_dto=None,
        status_code=201,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def create_webhook(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        data: JSONBody[service.NewWebhook],
    ) -> service.WebhookCreated:
        return await service.create(pool, caller, data, request.app.state.webhooks.allow_private)

    @get("/", summary="The account's endpoints, newest first", responses=problems(400, 401, 404, 503))
    async def list_webhooks(
        self,
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        account_id: AccountId = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        cursor: Cursor = None,
    ) -> service.WebhookPage:
        return await service.page(pool, caller, account_id, cursor, limit)

    @get(
        "/{webhook_id:str}", summary="One endpoint and how its deliveries stand", responses=problems(400, 401, 404, 503)
    )
    async def get_webhook(
        self, pool: NamedDependency[Pool], caller: NamedDependency[Principal], webhook_id: WebhookId
    ) -> service.WebhookOut:
        return await service.read(pool, caller, webhook_id)

    @delete(
        "/{webhook_id:str}",
        summary="Remove an endpoint (its delivery log goes with it)",
        status_code=204,
        responses=problems(400, 401, 404, 503),
    )
    async def delete_webhook(
        self, pool: NamedDependency[Pool], caller: NamedDependency[Principal], webhook_id: WebhookId
    ) -> None:
        await service.delete(pool, caller, webhook_id)

    @post(
        "/{webhook_id:str}/rotate",
        summary="A new signing secret, shown once; the previous one still signs during the grace period",
        dto=JsonBody[service.Rotate],
        return_dto=None,
        status_code=200,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def rotate_secret(
        self,
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        webhook_id: WebhookId,
        data: JSONBody[service.Rotate],
    ) -> service.Rotated:
        return await service.rotate(pool, caller, webhook_id, data)

    @post(
        "/{webhook_id:str}/replay",
        summary="Deliver again every change after `since` (new delivery ids); a disabled endpoint is enabled again",
        status_code=200,
        responses=problems(400, 401, 404, 503),
    )
    async def replay(
        self,
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        webhook_id: WebhookId,
        since: Annotated[int, QueryParameter(ge=0, le=MAX_SEQ, description="redeliver the changes after this seq")],
    ) -> service.WebhookOut:
        return await service.replay(pool, caller, webhook_id, since)

    @get(
        "/{webhook_id:str}/deliveries",
        summary="The delivery log, newest change first: status, latency and attempts of each",
        responses=problems(400, 401, 404, 503),
    )
    async def list_deliveries(
        self,
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        webhook_id: WebhookId,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_SEQ, description="`next_before` of the previous page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> service.DeliveryPage:
        return await service.deliveries(pool, caller, webhook_id, before, limit)
