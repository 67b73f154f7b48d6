"""create_app(settings) -> Litestar. Nothing happens at import; the lifespan
opens the pool and the LISTEN connection and closes them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from litestar import Litestar, Request, Response, Router
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from api import wire
from api.admin.routes import AdminController
from api.audit.routes import AuditController
from api.cases import deadlines as case_deadlines
from api.cases.routes import CaseController, CasePolicyController, NoteController
from api.changes import log as change_log
from api.changes.routes import ChangeController
from api.deadlines import sweep as deadlines
from api.feedback import store as feedback_store
from api.feedback.page import FeedbackPage
from api.feedback.routes import FeedbackController, rate_limits, shipment_feedback
from api.inbound import retention as inbound_retention
from api.inbound.routes import InboundController, IntegrationController
from api.lateness import sweep as promises
from api.lateness.routes import ReportController
from api.live.endpoint import live
from api.live.hub import Hub, Trace
from api.live.listener import Listener
from api.pages import session as pages_session
from api.pages.assets import static_router, templates
from api.pages.routes import Pages, pages_live
from api.pages.tracking import TrackingPage, tracking_live
from api.shell import keys
from api.shell.auth import KeyCache, provide_caller
from api.shell.database import Pool, create_pool
from api.shell.docs_assets import render_plugins
from api.shell.errors import check_query, exception_handlers
from api.shell.health import count_statuses, healthz, metrics, readyz
from api.shell.openapi import ClosedStructSchemaPlugin, allowed_methods
from api.shell.settings import Settings
from api.shell.stalls import GcTimer, settle_gc, unsettle_gc, watch_loop
from api.shell.tasks import cancel_and_wait
from api.shipments.routes import EventBatchController, ShipmentController
from api.support.routes import SupportController
from api.webhooks import worker as webhooks
from api.webhooks.routes import WebhookController


def create_app(
    settings: Settings,
    *,
    database_url: str,
    pool: Pool | None = None,
) -> Litestar:
    """`database_url` is resolved already (embedded or not); a `pool` may be
    injected, and is then left open for its owner to close."""
    wire.STALE_AFTER = timedelta(hours=settings.stale_after_hours)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        own_pool = pool is None
        app.state.pool = pool or await create_pool(
            database_url, min_size=settings.pool_min_size, max_size=settings.pool_max_size
        )
        cache = app.state.key_cache = KeyCache(settings.key_cache_seconds)
        app.state.feedback_links = wire.PublicLinks(
            keys=await feedback_store.link_keys(app.state.pool), base_url=settings.link_base
        )
        pages_session.keep_csrf_secret(csrf, app.state.feedback_links.keys)
        listener = app.state.listener = Listener(database_url)

        def on_revoked(payload: str) -> None:
            secret_hash = bytes.fromhex(payload)
            cache.evict(secret_hash)
            app.state.hub.revoke(secret_hash)

        async def trust() -> None:
            cache.trusted = True
            # revocations sent while we were not listening: close their sockets now
            held = list(app.state.hub.by_key)
            if held:
                revoked = await app.state.pool.fetch(
                    "select secret_hash from api_keys where secret_hash = any($1) and revoked_at is not null", held
                )
                for row in revoked:
                    app.state.hub.revoke(row["secret_hash"])

        def distrust() -> None:
            cache.trusted = False

        listener.subscribe(keys.REVOKED_CHANNEL, on_revoked, on_connect=trust, on_disconnect=distrust)
        hub = app.state.hub = Hub(
            app.state.pool,
            poll_interval=settings.live_poll_seconds,
            max_outbox=settings.live_max_outbox,
            max_lag=settings.live_max_lag_seconds,
            database_url=database_url,
            trace=Trace(settings.live_trace) if settings.live_trace else None,
        )
        await hub.start()
        # after a reconnect the hub reads what it missed from the log
        listener.subscribe(change_log.CHANNEL, hub.wake, on_connect=hub.wake)
        app.state.webhooks = webhook_config
        delivery = webhooks.Worker(app.state.pool, webhook_config)
        listener.subscribe(change_log.CHANNEL, delivery.poke, on_connect=delivery.poke)
        listener.start()
        sweeper = asyncio.create_task(
            deadlines.run(app.state.pool, settings.deadline_poll_seconds, [promises.PROMISES, *case_deadlines.KINDS]),
            name="ontime-deadlines",
        )
        app.state.inbound_max_body_bytes = settings.inbound_max_body_bytes
        expirer = asyncio.create_task(
            inbound_retention.run(app.state.pool, settings.inbound_retention_days), name="ontime-inbound-retention"
        )
        deliverer = asyncio.create_task(delivery.run(), name="ontime-webhooks")
        gc_timer = GcTimer()
        gc_timer.install()
        loop_watch = asyncio.create_task(watch_loop(), name="ontime-loop-lag")
        # started: what exists now lives as long as the process (bench/README.md, "Live")
        collector = settle_gc()
        try:
            yield
        finally:
            unsettle_gc(collector)
            await cancel_and_wait(loop_watch)
            gc_timer.remove()
            await cancel_and_wait(deliverer)
            await cancel_and_wait(expirer)
            await cancel_and_wait(sweeper)
            await listener.stop()
            await hub.stop()
            if own_pool:
                try:
                    await asyncio.wait_for(app.state.pool.close(), 10)
                except TimeoutError:
                    # a connection never came back; do not hang the shutdown on it
                    app.state.pool.terminate()

    webhook_config = webhooks.Config(
        allow_private=settings.webhook_allow_private,
        timeout_seconds=settings.webhook_timeout_seconds,
        first_retry=timedelta(seconds=settings.webhook_first_retry_seconds),
        retry_window=timedelta(hours=settings.webhook_retry_hours),
        poll_seconds=settings.webhook_poll_seconds,
        concurrency=settings.webhook_concurrency,
    )

    def provide_pool(request: Request[Any, Any, Any]) -> Pool:
        pool: Pool = request.app.state.pool
        return pool

    # the Allow header each OPTIONS handler answers with (see allowed_methods)
    allow: dict[HTTPRouteHandler, str] = {}

    async def before_request(request: Request[Any, Any, Any]) -> Response[None] | None:
        await check_query(request)
        if request.method == "OPTIONS" and (methods := allow.get(request.route_handler)):
            return Response(None, status_code=204, headers={"Allow": methods})
        return None

    # the pages' forms (the API, keyed and cookieless, is exempt: pages_session.CSRF_EXEMPT)
    csrf = pages_session.csrf_config(secure=settings.link_base.startswith("https://"))

    app = Litestar(
        dependencies={
            "pool": Provide(provide_pool, sync_to_thread=False),
            "caller": Provide(provide_caller),
        },
        route_handlers=[
            ShipmentController,
            EventBatchController,
            ChangeController,
            ReportController,
            AdminController,
            SupportController,
            AuditController,
            CaseController,
            CasePolicyController,
            NoteController,
            InboundController,
            IntegrationController,
            Router(
                "/",
                route_handlers=[FeedbackController, FeedbackPage],
                middleware=rate_limits(settings.feedback_per_address_per_minute, settings.feedback_per_link_per_minute),
            ),
            shipment_feedback,
            WebhookController,
            TrackingPage,
            tracking_live,
            Pages,
            pages_live,
            static_router(),
            live,
            healthz,
            readyz,
            metrics,
        ],
        lifespan=[lifespan],
        exception_handlers=exception_handlers,
        middleware=[count_statuses],
        before_request=before_request,
        plugins=[ClosedStructSchemaPlugin()],
        request_max_body_size=settings.max_body_bytes,
        template_config=templates(),
        csrf_config=csrf,
        openapi_config=OpenAPIConfig(
            title="ontime",
            version="1",
            description="Shipment tracking: statuses, delivery promises, a change feed and honest lateness.",
            path="/docs",
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="an API key: `Authorization: Bearer ot_…` (admin makes keys with POST /v1/keys)",
                    )
                }
            ),
            security=[{"apiKey": []}],
            render_plugins=render_plugins(),  # pinned bundles from the package: nothing from a CDN
        ),
        debug=False,
    )
    allow.update(allowed_methods(app))
    return app
