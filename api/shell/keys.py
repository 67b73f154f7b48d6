"""Accounts and API keys. Secrets are random, shown once, and stored as sha256."""

from __future__ import annotations

import hashlib
import secrets
from typing import NamedTuple

import asyncpg
import msgspec

from api.shell.database import Connection, Executor
from api.shell.ids import new_id


def new_secret() -> str:
    return "ot_" + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


FIND_BY_HASH = """
select id, role, account_id, carrier, name, revoked_at is not null as revoked
from api_keys where secret_hash = $1
"""

INSERT_KEY = """
insert into api_keys (id, role, account_id, carrier, name, secret_hash)
values ($1, $2, $3, $4, $5, $6)
returning id, role, account_id, carrier, name, created_at, revoked_at
"""

INSERT_BOOTSTRAP = """
insert into api_keys (id, role, name, secret_hash) values ($1, 'admin', 'bootstrap', $2)
on conflict (secret_hash) do nothing
"""

REVOKE = """
update api_keys set revoked_at = coalesce(revoked_at, now()) where id = $1
returning id, secret_hash, account_id
"""

ANY_ADMIN = "select exists(select 1 from api_keys where role = 'admin' and revoked_at is null)"

INSERT_ACCOUNT = """
insert into accounts (id, name, timezone, country) values ($1, $2, $3, $4)
returning id, name, timezone, country, created_at
"""

ACCOUNT_EXISTS = "select exists(select 1 from accounts where id = $1)"
ACCOUNT_COUNTRY = "select country from accounts where id = $1"

# Revocations are announced on this channel so that every process drops the
# key from its cache; the payload is the secret hash in hex.
REVOKED_CHANNEL = "ontime_key_revoked"


async def is_active(conn: Executor, secret: str) -> bool:
    return bool(
        await conn.fetchval("select revoked_at is null from api_keys where secret_hash = $1", secret_hash(secret))
    )


async def create_key(
    conn: Connection,
    role: str,
    account_id: str | None,
    carrier: str | None,
    name: str | None,
) -> tuple[asyncpg.Record, str]:
    secret = new_secret()
    row = await conn.fetchrow(INSERT_KEY, new_id("key"), role, account_id, carrier, name, secret_hash(secret))
    assert row is not None  # INSERT ... RETURNING without ON CONFLICT returns the row or raises
    return row, secret


class Revoked(NamedTuple):
    account_id: str | None  # the revoked key's account, for the audit row


async def revoke_key(conn: Connection, key_id: str) -> Revoked | None:
    """Revoke and announce it, in the caller's transaction: the NOTIFY goes out at commit.
    None: no such key."""
    row = await conn.fetchrow(REVOKE, key_id)
    if row is None:
        return None
    await conn.execute("select pg_notify($1, $2)", REVOKED_CHANNEL, row["secret_hash"].hex())
    return Revoked(row["account_id"])


async def ensure_admin_key(conn: Connection, bootstrap_secret: str | None) -> str | None:
    """Make sure an admin can get in. With a bootstrap secret, that secret is an
    admin key; without one, a new admin key is made when none exists, and its
    secret is returned (to be printed once)."""
    if bootstrap_secret:
        await conn.execute(INSERT_BOOTSTRAP, new_id("key"), secret_hash(bootstrap_secret))
        return None
    async with conn.transaction():
        # two processes starting together must not both mint a key
        await conn.execute("select pg_advisory_xact_lock(7244500002)")
        if await conn.fetchval(ANY_ADMIN):
            return None
        _, secret = await create_key(conn, "admin", None, None, "first admin")
        return secret


async def create_account(conn: Connection, name: str, timezone: str, country: str | None = None) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT_ACCOUNT, new_id("acc"), name, timezone, country)
    assert row is not None  # INSERT ... RETURNING without ON CONFLICT returns the row or raises
    return row


async def account_exists(conn: Executor, account_id: str) -> bool:
    return bool(await conn.fetchval(ACCOUNT_EXISTS, account_id))


class Account(msgspec.Struct, frozen=True):
    """What a shipment's create needs of its account."""

    country: str | None


async def find_account(conn: Executor, account_id: str) -> Account | None:
    row = await conn.fetchrow(ACCOUNT_COUNTRY, account_id)
    return None if row is None else Account(country=row["country"])
