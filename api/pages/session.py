"""Signing in to the pages with an API key (customer, support, admin): a session
cookie (HttpOnly, SameSite=Lax, Secure when served over TLS) naming the key,
signed with the same database-held keys as the recipients' links, so every
server process reads every session and a restart signs nobody out. The key is
read again on each page, so a revoked key's session ends at once. Forms carry a
CSRF token (Litestar's CSRFConfig, below), checked before any handler runs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.database import Executor
from api.shipments.routes import feedback_links
from domain.feedback import LinkExpired, LinkKeys, LinkRefused

COOKIE = "ontime_session"
LASTS = timedelta(hours=12)
SESSION = b"ontime-session-v1"
CSRF = b"ontime-csrf-v1"
ROLES = ("customer", "support", "admin")

KEY = "select id, role, account_id, carrier, name from api_keys where id = $1 and revoked_at is null"


def over_tls(request: Request[Any, Any, Any]) -> bool:
    """Served over TLS: this request came so, or the service's public address is https
    (TLS ended at a proxy in front, which talks plain HTTP to us)."""
    return request.url.scheme == "https" or feedback_links(request).base_url.startswith("https://")


def cookie_for(request: Request[Any, Any, Any], key_id: str) -> Cookie:
    token = feedback_links(request).keys.sign_for(SESSION, key_id, utcnow() + LASTS)
    return Cookie(
        key=COOKIE,
        value=token,
        max_age=int(LASTS.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=over_tls(request),
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


# Litestar's CSRF middleware guards every form of the pages (sign-in and sign-out
# included): a token in an HttpOnly, SameSite cookie, and the same token, signed,
# in a hidden field of each form (`csrf_input` in the templates). The API (/v1/,
# keyed, no cookies), the recipients' pages (/f/, /t/: the link is the credential)
# and the service's own paths never see it.
CSRF_EXEMPT = [
    "^/v1/",
    "^/f/",
    "^/t/",
    "^/docs",
    "^/healthz$",
    "^/readyz$",
    "^/metrics$",
    "^/pages/static/",
]


def csrf_config(secure: bool) -> CSRFConfig:
    """The middleware's settings; its secret is a placeholder until `keep_csrf_secret`
    derives the real one from the database-held keys at startup (the same in every process)."""
    return CSRFConfig(
        secret=secrets.token_hex(32),
        cookie_name="ontime_csrf",
        cookie_httponly=True,
        cookie_samesite="lax",
        cookie_secure=secure,
        exclude=CSRF_EXEMPT,
    )


def keep_csrf_secret(config: CSRFConfig, keys: LinkKeys) -> None:
    """Every process signs and checks CSRF tokens with the same secret: one derived from the current link key."""
    config.secret = hmac.new(keys.keys[keys.current], CSRF, hashlib.sha256).hexdigest()
