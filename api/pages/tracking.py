"""/t/{token}: the recipient's tracking page, and /t/{token}/live, the websocket
that tells it to refresh. The token (a shipment's `tracking_url`) is the whole
credential: it names one shipment, and its live socket hears of that shipment
only, and only that it changed (the page then fetches itself again): nothing of
the shipper's own data (metadata, references, the account) ever reaches it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Controller, Request, Response, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from api.feedback import store as feedback_store
from api.feedback.page import TEXT as RATE_TEXT
from api.feedback.page import language
from api.live.hub import hub_of
from api.pages import words
from api.pages.live import tell_changes
from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.database import Pool, pool_of
from api.shipments import store as shipments
from api.shipments.routes import feedback_links
from domain.feedback import TRACKING, LinkExpired, LinkRefused
from domain.shipment import Shipment
from domain.status import Status

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the link is the credential: never leak it onward
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


@dataclass(frozen=True)
class Step:
    status: str
    at: datetime
    place: str | None
    said: str | None


def place_text(place: Any) -> str | None:
    if place is None:
        return None
    parts = [place.city, place.region, place.country]
    return ", ".join(p for p in parts if p) or None


def when(moment: datetime, lang: str) -> str:
    """A readable instant in UTC for the page without script ("Friday 22 November, 18:00 UTC");
    the page's script rewrites each in the reader's own time zone."""
    day = words.WEEKDAYS[lang][moment.weekday()]
    month = words.MONTHS[lang][moment.month - 1]
    if lang == "es":
        return f"{day} {moment.day} de {month}, {moment:%H:%M} UTC"
    return f"{day} {moment.day} {month}, {moment:%H:%M} UTC"


async def tracked(pool: Pool, request: Request[Any, Any, Any], token: str) -> Shipment:
    """The shipment the token names; LinkRefused or LinkExpired otherwise."""
    link = feedback_links(request).keys.verify_for(TRACKING, token, utcnow())
    shipment = await shipments.get(pool, link.shipment_id, None)
    if shipment is None:
        raise LinkRefused
    return shipment


def refused(lang: str, key: str, status: int) -> Response[Any]:
    return Template(
        "refused.html.j2",
        context={"lang": lang, "t": words.TEXT[lang], "message": words.TEXT[lang][key]},
        status_code=status,
        headers=HEADERS,
    )


class TrackingPage(Controller):
    path = "/t"
    include_in_schema = False

    @get("/{token:str}")
    async def page(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], token: FromPath[str]
    ) -> Response[Any]:
        lang = language(request.headers.get("accept-language"))
        try:
            shipment = await tracked(pool, request, token)
        except LinkRefused:
            return refused(lang, "unknown", 404)
        except LinkExpired:
            return refused(lang, "expired", 410)
        now = utcnow()
        events = await shipments.timeline(pool, shipment.id)
        shipper = await feedback_store.account_name(pool, shipment.account_id)
        progress = shipment.progress
        steps = [
            Step(
                status=words.STATUS[lang][event.status],
                at=event.occurred_at,
                place=place_text(event.location),
                said=(words.REASON[lang][event.reason] if event.reason else None),
            )
            for event, _ in reversed(events)
        ]
        links = feedback_links(request)
        answered = await feedback_store.get(pool, shipment.id) is not None
        context = {
            "lang": lang,
            "t": words.TEXT[lang],
            "token": token,
            "shipment": shipment,
            "status": progress.status.value,
            "status_text": words.STATUS[lang][progress.status],
            # why it stands where it stands: the reason its current status's own event gave, or while
            # in exception the latest reason given (a later exception scan may give none); not an
            # exception's reason once the parcel has moved on. The steps keep each their own.
            "reason_text": (
                words.REASON[lang][progress.reason]
                if progress.reason
                and (progress.reason_key == progress.status_key or progress.status is Status.EXCEPTION)
                else None
            ),
            "shipper": shipper,
            "late": shipment.is_late(now),
            "at_risk": shipment.is_at_risk(now),
            "delivered": progress.status is Status.DELIVERED,
            "steps": steps,
            "when": lambda moment: when(moment, lang),
            "feedback_url": None if answered else links.url_for(shipment),
            "feedback_path": None if answered else (links.url_for(shipment) or "").removeprefix(links.base_url),
            "rate": RATE_TEXT[lang],
            "place": place_text(progress.location),
        }
        return Template("track.html.j2", context=context, headers=HEADERS)


@websocket("/t/{token:str}/live")
async def tracking_live(socket: WebSocket[Any, Any, State], token: FromPath[str]) -> None:
    """Sends `{"type": "changed"}` whenever the shipment changes; nothing else."""
    await socket.accept()
    pool = pool_of(socket.app)
    try:
        link = socket.app.state.feedback_links.keys.verify_for(TRACKING, token, utcnow())
        shipment = await shipments.get(pool, link.shipment_id, None)
    except (LinkRefused, LinkExpired):
        shipment = None
    if shipment is None:
        await socket.close(4001, "no such tracking link")
        return
    hub = hub_of(socket.app)
    # a reader of this one shipment: the hub's own checks keep it to that account
    reader = Principal(key_id=f"tracking:{shipment.id}", role="customer", account_id=shipment.account_id, carrier=None)
    subscriber = hub.connect(reader, f"tracking:{token}".encode())
    try:
        await hub.subscribe(subscriber, shipments=[shipment.id], since=None)

        await tell_changes(socket, subscriber)
    finally:
        hub.disconnect(subscriber)
