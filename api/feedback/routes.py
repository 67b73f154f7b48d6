"""GET/POST /v1/feedback/{token}: the recipient's rating, with no API key, rate
limited per client address and per link; GET /v1/shipments/{id}/feedback: the
rating, for the shipper and the support desk."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address
from litestar.params import JSONBody
from msgspec import Meta

from api import wire
from api.feedback import service, store
from api.shell.auth import READERS, Principal, allow
from api.shell.body import JsonBody
from api.shell.clock import utcnow
from api.shell.database import Pool
from api.shell.errors import Problem, problems
from api.shipments.routes import ShipmentId, feedback_links, readable_shipment
from domain.feedback import GiveFeedback

Token = Annotated[
    str,
    Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$", description="the token of a feedback link"),
]


def _by_link(request: Request[Any, Any, Any]) -> str:
    return f"link:{request.path_params.get('token', '')}"


def _by_address(request: Request[Any, Any, Any]) -> str:
    return f"address:{get_remote_address(request)}"


def rate_limits(per_address_per_minute: int, per_link_per_minute: int) -> list[DefineMiddleware]:
    """Litestar's own rate limiting (a sliding minute in the app's memory store):
    one limit per client address, another per link, so that neither one address
    trying many links nor many addresses trying one link gets far. Per process:
    with N processes a client gets N times the allowance, still bounded."""
    return [
        RateLimitConfig(
            rate_limit=("minute", per_address_per_minute), identifier_for_request=_by_address, store="feedback"
        ).middleware,
        RateLimitConfig(
            rate_limit=("minute", per_link_per_minute), identifier_for_request=_by_link, store="feedback"
        ).middleware,
    ]


class FeedbackController(Controller):
    """Keyless: the middleware (rate limits) is set by the app from its settings."""

    path = "/v1/feedback"
    tags = ("feedback",)
    security = [{}]  # noqa: RUF012 (Litestar's own attribute)

    @get(
        "/{token:str}",
        summary="What a feedback link is for (the shipper, carrier and delivery) and whether it was used",
        description="No API key: the link is the credential. Rate limited per client address and per link.",
        responses=problems(400, 404, 410, 429, 503),
    )
    async def view_link(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], token: Token
    ) -> service.LinkView:
        return await service.view(pool, feedback_links(request), token, utcnow())

    @post(
        "/{token:str}",
        summary="Rate a delivery: 1 to 5, with an optional comment; once per link",
        description=(
            "No API key: the link is the credential. A low rating (1 or 2) opens a complaint case when the "
            "shipper's account asks for it (its `low_rating` setting). Rate limited per client address and per link."
        ),
        dto=JsonBody[GiveFeedback],
        return_dto=None,
        status_code=201,
        responses=problems(400, 404, 409, 410, 413, 429, 503),
    )
    async def give(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        token: Token,
        data: JSONBody[GiveFeedback],
    ) -> wire.FeedbackOut:
        return await service.give(pool, feedback_links(request), token, data, utcnow())


@get(
    "/v1/shipments/{shipment_id:str}/feedback",
    summary="The recipient's rating of a delivered shipment (404 until rated)",
    tags=["feedback"],
    guards=[allow(*READERS)],
    responses=problems(400, 401, 404, 503),
)
async def shipment_feedback(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Pool],
    caller: NamedDependency[Principal],
    shipment_id: ShipmentId,
) -> wire.FeedbackOut:
    _, given = await readable_shipment(request, pool, caller, shipment_id, store.get)
    if given is None:
        raise Problem(404, "not-found", "Not found", "the recipient has not rated this shipment")
    return given
