"""The operations board (/board: customer, support or admin) and the support
console (/console: support or admin), behind a sign-in with an API key
(/login). Each page reads through the same use cases as the API, audited as
the API audits them, and updates itself over /pages/live: a websocket that says
`{"type": "changed"}` when something the page shows may have changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, WebSocket, get, post, websocket
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from api import wire
from api.cases import desk as cases
from api.feedback import store as feedback_store
from api.live.hub import hub_of
from api.pages import chart, session, store
from api.pages.live import tell_changes
from api.shell import audit
from api.shell.auth import KeyCache, Principal
from api.shell.clock import utcnow
from api.shell.database import Pool, pool_of
from api.shell.errors import Problem, field_error, invalid
from api.shipments import store as shipments
from api.shipments.routes import feedback_links, readable_shipment
from api.shipments.service import revise_promise as revise
from api.support import service as support
from domain.cases import CaseStatus, CaseType, Priority
from domain.shipment import RevisePromise
from domain.status import Status

T = TypeVar("T")

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}
DESK = ("support", "admin")
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def page(
    request: Request[Any, Any, Any], name: str, who: Principal | None, status: int = 200, **context: Any
) -> Template:
    return Template(
        name,
        context={"lang": "en", "who": who, **context},
        status_code=status,
        headers=HEADERS,
    )


def to_login(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(f"/login?next={request.url.path}", status_code=303)


def local(path: str | None, fallback: str) -> str:
    """Only a path on this site: never `//elsewhere` or `https://elsewhere`."""
    return path if path and path.startswith("/") and not path.startswith("//") and "\\" not in path else fallback


def span(seconds: float) -> str:
    """A duration as a busy desk reads it: "2 h 05 min", "7 min", "under a minute"."""
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min" if minutes else "under a minute"


def left(due: datetime | None, now: datetime) -> str:
    """Time left before a deadline, or how long ago it passed."""
    if due is None:
        return "-"
    seconds = (due - now).total_seconds()
    return f"{span(seconds)} left" if seconds >= 0 else f"overdue by {span(-seconds)}"


def late_by(due: datetime, now: datetime) -> str:
    """How long past its promise a shipment is ("–" when a revised promise is still ahead)."""
    return span((now - due).total_seconds()) if due < now else "–"


def form_command(fields: dict[str, str], type_: type[T]) -> T:
    """A form's fields as a use case's command, or a 400 naming the field (never a 500)."""
    try:
        return msgspec.convert(fields, type_)
    except msgspec.ValidationError as exc:
        raise invalid([field_error(exc)], "the form is not valid") from None


async def desk_form(request: Request[Any, Any, Any], pool: Pool, data: dict[str, str]) -> Principal | None:
    """The support or admin session a form was posted in (its CSRF token was checked before: session.csrf_config)."""
    who = await session.signed_in(pool, request)
    if who is None or who.role not in DESK:
        return None
    return who


class Pages(Controller):
    include_in_schema = False

    @get("/login")
    async def login_form(self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Template:
        return page(request, "login.html.j2", None, next=local(next, "/board"), error=None)

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], data: Form) -> Response[Any]:
        target = local(data.get("next"), "/board")
        cache: KeyCache = request.app.state.key_cache
        who = await cache.principal(pool, data.get("key", "").strip()) if data.get("key", "").strip() else None
        if who is None or who.role not in session.ROLES:
            return page(
                request,
                "login.html.j2",
                None,
                401,
                next=target,
                error="That key is unknown or revoked, or it cannot sign in here.",
            )
        redirect = Redirect(target, status_code=303)
        redirect.cookies.append(session.cookie_for(request, who.key_id))
        return redirect

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        redirect = Redirect("/login", status_code=303)
        redirect.cookies.append(session.signed_out())
        return redirect

    @get("/board")
    async def board(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], account: FromQuery[str | None] = None
    ) -> Response[Any]:
        who = await session.signed_in(pool, request)
        if who is None:
            return to_login(request)
        scope = who.account_scope or account
        now = utcnow()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        counts = await store.in_flight(pool, scope)
        watch = await store.watch(pool, scope, now)
        if audit.crosses(who, scope):  # support or admin looking at shipments of accounts not theirs
            touched = audit.by_account((r["account_id"], r["id"]) for r in watch)
            async with pool.acquire() as conn, conn.transaction():
                await audit.record_by_account(
                    conn, audit.access(request, who), touched, query=f"board {scope or 'all'}"
                )
        rows = {r["day"].date(): r for r in await store.by_day(pool, scope, 29, today)}
        days = [
            chart.Day(d, rows[d]["delivered"] if d in rows else 0, rows[d]["on_time"] if d in rows else 0)
            for d in ((today - timedelta(days=n)).date() for n in range(29, -1, -1))
        ]
        ratings, satisfied = await store.csat(pool, scope, today.replace(day=1))
        return page(
            request,
            "board.html.j2",
            who,
            scope=scope,
            scope_name=await feedback_store.account_name(pool, scope) if scope else None,
            counts=[
                (s.value, counts.get(s.value, 0))
                for s in Status
                if s.value in counts or s.value not in ("delivered", "returned_to_sender", "cancelled")
            ],
            in_flight=sum(counts.values()),
            late=[r for r in watch if r["late"]],
            at_risk=[r for r in watch if not r["late"]],
            today=days[-1],
            days=days,
            chart=chart.svg(days, "On-time rate of each of the last 30 days"),
            csat=None if not ratings else satisfied / ratings,
            ratings=ratings,
            now=now,
            late_by=late_by,
            desk=who.role in DESK,
        )

    @get("/console")
    async def console(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], q: FromQuery[str | None] = None
    ) -> Response[Any]:
        who = await session.signed_in(pool, request)
        if who is None or who.role not in DESK:
            return to_login(request)
        access = audit.access(request, who)
        query = (q or "").strip()[:200]
        hits = (await support.search(pool, access, query, 20)).items if query else []
        queue = await cases.queue(
            pool,
            who,
            access,
            status=None,
            type=None,
            assignee_key=None,
            account_id=None,
            breached=None,
            cursor=None,
            limit=50,
        )
        # breached first, then the deadline nearest to breach
        open_cases = sorted(
            (c for c in queue.items if c.status not in ("resolved", "closed")),
            key=lambda c: (
                c.response_breached_at is None and c.resolution_breached_at is None,
                c.next_due or datetime.max.replace(tzinfo=UTC),
            ),
        )
        now = utcnow()
        return page(request, "console.html.j2", who, q=query, hits=hits, queue=open_cases, now=now, left=left)

    @get("/console/shipments/{shipment_id:str}")
    async def shipment(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], shipment_id: FromPath[str]
    ) -> Response[Any]:
        who = await session.signed_in(pool, request)
        if who is None or who.role not in DESK:
            return to_login(request)
        access = audit.access(request, who)
        try:
            found, events = await readable_shipment(request, pool, who, shipment_id, shipments.timeline)
        except Problem:
            return page(
                request,
                "console.html.j2",
                who,
                404,
                q="",
                hits=[],
                queue=[],
                now=utcnow(),
                left=left,
                error="No such shipment.",
            )
        notes = await cases.notes(pool, who, access, shipment_id)
        on_it = await cases.queue(
            pool,
            who,
            access,
            status=None,
            type=None,
            assignee_key=None,
            account_id=found.account_id,
            breached=None,
            cursor=None,
            limit=100,
        )
        now = utcnow()
        return page(
            request,
            "shipment.html.j2",
            who,
            shipment=wire.shipment_out(found, now, with_recipient=True, links=feedback_links(request)),
            account_name=await feedback_store.account_name(pool, found.account_id),
            events=[wire.event_out(e, at) for e, at in events],
            notes=notes.items,
            cases=[c for c in on_it.items if c.shipment_id == shipment_id],
            types=[t.value for t in CaseType],
            priorities=[p.value for p in Priority],
            statuses=[s.value for s in CaseStatus],
            now=now,
            left=left,
        )

    @post("/console/shipments/{shipment_id:str}/notes", status_code=303)
    async def add_note(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], shipment_id: FromPath[str], data: Form
    ) -> Response[Any]:
        who = await desk_form(request, pool, data)
        if who is None:
            return to_login(request)
        body = form_command({"body": data.get("body", "").strip()}, cases.AddText)
        await cases.add_note(pool, who, audit.access(request, who), shipment_id, body)
        return Redirect(f"/console/shipments/{shipment_id}#notes", status_code=303)

    @post("/console/shipments/{shipment_id:str}/cases", status_code=303)
    async def open_case(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], shipment_id: FromPath[str], data: Form
    ) -> Response[Any]:
        who = await desk_form(request, pool, data)
        if who is None:
            return to_login(request)
        command = form_command(
            {
                "type": data.get("type", "other"),
                "priority": data.get("priority", "normal"),
                "subject": data.get("subject", "").strip(),
                "shipment_id": shipment_id,
            },
            cases.OpenCase,
        )
        await cases.open_case(pool, who, audit.access(request, who), command)
        return Redirect(f"/console/shipments/{shipment_id}#cases", status_code=303)

    @post("/console/cases/{case_id:str}", status_code=303)
    async def move_case(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], case_id: FromPath[str], data: Form
    ) -> Response[Any]:
        who = await desk_form(request, pool, data)
        if who is None:
            return to_login(request)
        command = form_command({"status": data.get("status", "")}, cases.UpdateCase)
        case = await cases.update_case(pool, who, audit.access(request, who), case_id, command, None)
        return Redirect(local(data.get("back"), f"/console#case-{case.id}"), status_code=303)

    @post("/console/shipments/{shipment_id:str}/promise", status_code=303)
    async def revise_promise(
        self, request: Request[Any, Any, Any], pool: NamedDependency[Pool], shipment_id: FromPath[str], data: Form
    ) -> Response[Any]:
        """Admin keys only, as in the API: the promise is the shipper's word."""
        who = await desk_form(request, pool, data)
        if who is None or who.role != "admin":
            return to_login(request)
        try:
            when = datetime.fromisoformat(data.get("promised_by", "")).replace(tzinfo=UTC)
            command = msgspec.convert(
                {"promised_by": when.isoformat(), "reason": data.get("reason", "").strip()}, RevisePromise
            )
        except (ValueError, msgspec.ValidationError) as exc:
            raise Problem(400, "invalid-request", "Invalid request", f"the new promise is not valid: {exc}") from None
        await revise(pool, who, shipment_id, command, audit.access(request, who))
        return Redirect(f"/console/shipments/{shipment_id}", status_code=303)


@websocket("/pages/live")
async def pages_live(socket: WebSocket[Any, Any, State]) -> None:
    """For a signed-in page: `{"type": "changed"}` when a change reaches what the
    session may read (its account, or every account for the desk), at most a
    few times a second; the page then fetches itself again."""
    await socket.accept()
    pool = pool_of(socket.app)
    who = await session.signed_in(pool, socket)
    if who is None:
        await socket.close(4001, "sign in first")
        return
    hub = hub_of(socket.app)
    subscriber = hub.connect(who, f"page:{who.key_id}:{id(socket)}".encode())
    try:
        await hub.subscribe(
            subscriber, accounts=[who.account_scope] if who.account_scope else [], everything=who.account_scope is None
        )

        await tell_changes(socket, subscriber, quiet=0.3)
    finally:
        hub.disconnect(subscriber)
