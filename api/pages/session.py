"""Signing in to the pages with an API key (customer, support, admin): a session
cookie (HttpOnly, SameSite=Lax, Secure when served over TLS) naming the key,
signed with the same database-held keys as the recipients' links, so every
server process reads every session and a restart signs nobody out. The key is
read again on each page, so a revoked key's session ends at once. Forms carry a
CSRF token derived from the session (an attacker's page can neither read the
cookie nor make the token), checked before anything is done."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.database import Executor
from api.shell.errors import Problem
from api.shipments.routes import feedback_links
from domain.feedback import LinkExpired, LinkRefused

COOKIE = "ontime_session"
LASTS = timedelta(hours=12)
SESSION = b"ontime-session-v1"
CSRF = b"ontime-csrf-v1"
ROLES = ("customer", "support", "admin")

KEY = "select id, role, account_id, carrier, name from api_keys where id = $1 and revoked_at is null"


def cookie_for(request: Request[Any, Any, Any], key_id: str) -> Cookie:
    token = feedback_links(request).keys.sign_for(SESSION, key_id, utcnow() + LASTS)
    return Cookie(
        key=COOKIE,
        value=token,
        max_age=int(LASTS.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )


def signed_out() -> Cookie:
    return Cookie(key=COOKIE, value="", max_age=0, httponly=True, samesite="lax", path="/")


async def signed_in(conn: Executor, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """Whose session this request (or websocket) carries, if any (and the key is still good)."""
    token = connection.cookies.get(COOKIE)
    if not token:
        return None
    try:
        link = connection.app.state.feedback_links.keys.verify_for(SESSION, token, utcnow())
    except (LinkRefused, LinkExpired):
        return None
    row = await conn.fetchrow(KEY, link.shipment_id)
    if row is None or row["role"] not in ROLES:
        return None
    return Principal(
        key_id=row["id"], role=row["role"], account_id=row["account_id"], carrier=row["carrier"], name=row["name"]
    )


def csrf_token(request: Request[Any, Any, Any]) -> str:
    """The token this session's forms carry."""
    session = request.cookies.get(COOKIE, "")
    secret = feedback_links(request).keys.keys[feedback_links(request).keys.current]
    return hmac.new(secret, CSRF + b"\x00" + session.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request[Any, Any, Any], sent: str | None) -> None:
    keys = feedback_links(request).keys
    session = request.cookies.get(COOKIE, "").encode()
    for secret in keys.keys.values():
        expected = hmac.new(secret, CSRF + b"\x00" + session, hashlib.sha256).hexdigest()
        if sent and session and hmac.compare_digest(expected, sent):
            return
    raise Problem(
        403, "csrf", "Forbidden", "the form is stale or came from another site: reload the page and try again"
    )
