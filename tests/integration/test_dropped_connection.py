"""Connections the database drops under the app: work starts over where that is
safe, and is a 503 (never a 500) where it is not."""

from __future__ import annotations

import asyncpg

from api import database
from tests.integration.conftest import Api, shipment_body

KILL_OTHERS = """
select count(pg_terminate_backend(pid)) from pg_stat_activity
where datname = current_database() and pid <> pg_backend_pid()
"""


async def test_a_transaction_on_a_connection_killed_while_idle_runs_on_a_new_one(pool: asyncpg.Pool, database_url: str):
    async with database.transaction(pool) as conn:
        await conn.execute("create table marks (n int)")
    admin = await asyncpg.connect(database_url)
    try:
        assert await admin.fetchval(KILL_OTHERS) >= 1
        async with database.transaction(pool) as conn:
            await conn.execute("insert into marks values (1)")
        assert await admin.fetchval("select count(*) from marks") == 1
    finally:
        await admin.close()


async def test_requests_after_the_database_drops_every_connection_are_answered_never_with_a_500(
    api: Api, database_url: str
):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    admin = await asyncpg.connect(database_url)
    try:
        for _ in range(3):
            assert await admin.fetchval(KILL_OTHERS) >= 1
            read = await customer.get(f"/v1/shipments/{shipment['id']}")
            write = await customer.post(
                f"/v1/shipments/{shipment['id']}/events",
                json={"status": "in_transit", "occurred_at": "2029-12-01T10:00:00Z"},
            )
            for response in (read, write):
                assert response.status_code in (200, 201, 503), response.text
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "1"
        # and once the pool has new connections, everything works again
        assert (await customer.get(f"/v1/shipments/{shipment['id']}")).status_code == 200
    finally:
        await admin.close()
