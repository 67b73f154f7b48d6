"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from api.shell.database import pool_of

REQUESTS = Counter("ontime_http_requests", "HTTP requests answered, by status", ["status"])
# each status's child, looked up once per process: labels() takes a lock and
# builds a tuple key on every call, on every request
_BY_STATUS: dict[int, Any] = {}
EVENTS = Counter("ontime_events", "Tracking events received", ["outcome"])


@get("/healthz", summary="Liveness", tags=["health"], security=[{}])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    summary="Readiness: the database answers",
    tags=["health"],
    security=[{}],
    responses={
        503: ResponseSpec(
            dict[str, str], description="not ready: the database does not answer", generate_examples=False
        )
    },
)
async def readyz(request: Request[Any, Any, State]) -> Response[dict[str, str]]:
    try:
        await asyncio.wait_for(pool_of(request.app).fetchval("select 1"), 2.0)
    except Exception as exc:  # whatever the failure, the answer is "not ready"
        return Response(
            content={"status": "unavailable", "detail": f"database: {exc.__class__.__name__}"},
            status_code=503,
        )
    return Response(content={"status": "ready"})


@get("/metrics", summary="Prometheus metrics", tags=["health"], media_type=CONTENT_TYPE_LATEST, security=[{}])
async def metrics() -> bytes:
    return generate_latest()


def count_statuses(app: ASGIApp) -> ASGIApp:
    """Count every HTTP answer by the status it went out with (routing's 404s and
    405s, exception handlers' problems and hooks' answers included)."""

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                child = _BY_STATUS.get(status)
                if child is None:
                    child = _BY_STATUS[status] = REQUESTS.labels(str(status))
                child.inc()
            await send(message)

        await app(scope, receive, counting_send)

    return counted
