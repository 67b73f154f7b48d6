"""The webhook tables: one cursor per endpoint, one delivery row per (endpoint, seq)."""

from __future__ import annotations

import asyncpg
import pytest


async def test_the_webhook_disabled_kind_may_be_logged(conn: asyncpg.Connection) -> None:
    assert await conn.fetchval("select count(*) from change_kinds where kind = 'webhook_disabled'") == 1


async def test_a_change_is_queued_once_per_endpoint(conn: asyncpg.Connection) -> None:
    account = await conn.fetchval("insert into accounts (id, name) values ('acct_wh', 'Hooks') returning id")
    await conn.execute(
        "insert into webhook_endpoints (id, account_id, url, secret) values ('wh_1', $1, 'https://example.com/h', 's')",
        account,
    )
    await conn.execute("insert into webhook_deliveries (id, endpoint_id, seq) values ('d1', 'wh_1', 5)")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute("insert into webhook_deliveries (id, endpoint_id, seq) values ('d2', 'wh_1', 5)")
