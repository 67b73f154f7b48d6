"""Who is calling: API keys, verified against the database and cached per process.

The cache is safe because revocation reaches it: revoking a key commits a
NOTIFY that every process's listener turns into an eviction. While a process's
listener is down it cannot hear revocations, so it stops trusting its cache and
asks the database on every request until the listener is back (and the cache
is cleared on every reconnect)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from api.shell import keys
from api.shell.database import Pool
from api.shell.errors import Problem, not_found

Role = Literal["customer", "carrier", "support", "admin"]
READERS: tuple[Role, ...] = ("customer", "support", "admin")


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    role: Role
    account_id: str | None
    carrier: str | None
    name: str | None = None

    @property
    def account_scope(self) -> str | None:
        """The one account this key may read, or None for every account."""
        return self.account_id if self.role == "customer" else None

    @property
    def reads_shipments(self) -> bool:
        return self.role in ("customer", "support", "admin")


def unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class KeyCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        # Bumped by every eviction: a key read from the database while a
        # revocation arrived must not be cached after it.
        self._generation = 0
        self._trusted = False

    @property
    def generation(self) -> int:
        """Changes whenever a key may have been revoked."""
        return self._generation

    @property
    def trusted(self) -> bool:
        """True while the revocation listener is connected."""
        return self._trusted

    @trusted.setter
    def trusted(self, value: bool) -> None:
        self._trusted = value
        self.clear()

    def evict(self, secret_hash: bytes) -> None:
        self._generation += 1
        self._entries.pop(secret_hash, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def principal(self, pool: Pool, secret: str) -> Principal | None:
        digest = keys.secret_hash(secret)
        if self._trusted:
            entry = self._entries.get(digest)
            if entry is not None and entry[1] > self._clock():
                return entry[0]
        generation = self._generation
        row = await pool.fetchrow(keys.FIND_BY_HASH, digest)
        if row is None or row["revoked"]:
            self._entries.pop(digest, None)
            return None
        principal = Principal(
            key_id=row["id"], role=row["role"], account_id=row["account_id"], carrier=row["carrier"], name=row["name"]
        )
        if self._trusted and generation == self._generation:
            self._entries[digest] = (principal, self._clock() + self._ttl)
        return principal


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    # read from the raw scope: connection.headers builds (and keeps, on a
    # websocket, for its whole life) a Headers object per connection
    header = next(
        (value.decode("latin-1") for name, value in connection.scope["headers"] if name == b"authorization"),
        None,
    )
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    token = bearer_token(connection)
    if token is None:
        raise unauthorized("send an API key as 'Authorization: Bearer <key>'")
    state = connection.app.state
    key_cache: KeyCache = state.key_cache
    principal = await key_cache.principal(state.pool, token)
    if principal is None:
        raise unauthorized("this API key is unknown or has been revoked")
    return principal


_PRINCIPAL = "ontime.principal"


def allow(*roles: Role) -> Guard:
    """A guard: the caller's key must be valid (else 401) and of one of these
    roles (else 404, so an endpoint a key may not use looks like one that does
    not exist). The principal is kept on the request for `provide_caller`."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await authenticate(connection)
        if principal.role not in roles:
            raise not_found("endpoint")
        connection.scope["state"][_PRINCIPAL] = principal

    return guard


async def provide_caller(request: Request[Any, Any, Any], pool: NamedDependency[Pool]) -> Principal:
    """The `caller` dependency: the principal a guard verified, or verified now.

    It takes `pool` (unused) so that Litestar resolves the two one after the
    other: dependencies with nothing between them are resolved together in an
    anyio task group, two tasks spawned on every request (bench/profile_poll.py
    put that at about a tenth of a GET's time)."""
    principal = request.scope["state"].get(_PRINCIPAL)
    if isinstance(principal, Principal):
        return principal
    return await authenticate(request)
