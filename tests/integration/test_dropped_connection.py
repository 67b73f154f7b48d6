"""Connections the database drops under the app: work starts over where that is
safe, and is a 503 (never a 500) where it is not."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.shell import database
from tests.integration.conftest import Api, shipment_body

SLEEPING = "select count(*) from pg_stat_activity where pid = $1 and query like 'select pg_sleep%'"
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


async def test_a_connection_killed_in_the_middle_of_a_query_is_never_lent_out_broken(database_url: str):
    """The pool hands connections back without asyncpg's reset query, the thing
    that used to find one the server killed mid-operation (asyncpg#1069). The
    interrupted work is a 503's DatabaseUnavailable; what comes after, on the
    pool's one connection slot, runs on a live connection."""
    pool = await database.create_pool(database_url, min_size=1, max_size=1)
    admin = await asyncpg.connect(database_url)
    try:
        for _ in range(3):
            victim = await pool.fetchval("select pg_backend_pid()")

            async def sleep_in_a_transaction() -> None:
                async with database.transaction(pool) as conn:
                    await conn.execute("select pg_sleep(30)")

            sleeping = asyncio.create_task(sleep_in_a_transaction())
            for _ in range(500):  # until the query is running on the server (5 s at most)
                if await admin.fetchval(SLEEPING, victim):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the sleeping query never started")
            assert await admin.fetchval("select pg_terminate_backend($1)", victim)
            with pytest.raises(database.DatabaseUnavailable):
                await asyncio.wait_for(sleeping, 5)
            async with database.transaction(pool) as conn:
                assert await conn.fetchval("select pg_backend_pid()") != victim
            assert await pool.fetchval("select 1") == 1
    finally:
        await admin.close()
        await pool.close()


async def test_with_the_database_up_requests_after_every_connection_was_killed_succeed(api: Api, database_url: str):
    """A restart or failover kills every pooled connection at once: the database is
    back, so a read or a write must not be a 503 just because the pool held the dead."""
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    url = f"/v1/shipments/{shipment['id']}"
    admin = await asyncpg.connect(database_url)
    try:
        for round_ in range(3):
            # several connections in the pool, all idle, all killed
            await asyncio.gather(*(customer.get(url) for _ in range(8)))
            assert await admin.fetchval(KILL_OTHERS) >= 2
            read = await customer.get(url)
            write = await customer.post(
                f"{url}/events",
                json={"status": "in_transit", "occurred_at": "2029-12-01T10:00:00Z", "event_id": f"e{round_}"},
            )
            assert read.status_code == 200, read.text
            assert write.status_code == 201, write.text
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
            # a read that succeeds leaves a live connection in the pool, to be killed
            # (after a round of 503s the pool may hold none, and the listener may be reconnecting)
            await _until_answered(customer, f"/v1/shipments/{shipment['id']}")
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
        # and once the pool has replaced its dead connections (each found on its next use), everything works again
        await _until_answered(customer, f"/v1/shipments/{shipment['id']}")
    finally:
        await admin.close()


async def _until_answered(client: httpx.AsyncClient, url: str, seconds: float = 2.0) -> None:
    async with asyncio.timeout(seconds):
        while (response := await client.get(url)).status_code != 200:
            assert response.status_code == 503, response.text
            await asyncio.sleep(0.01)


async def test_an_event_that_waited_for_the_row_lock_sees_the_lateness_record_made_meanwhile(
    api: Api, pool: asyncpg.Pool
):
    """A writer that waits for a shipment's row lock must see what the holder
    wrote elsewhere (its lateness record), or it would save `late = false`
    over a standing record, or record the same broken promise twice."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from api.lateness import sweep as deadlines

    _, customer = await api.customer()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    shipment = (await customer.post("/v1/shipments", json=shipment_body(promised_by=past))).json()
    holder = await pool.acquire()
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("select 1 from shipments where id = $1 for update", shipment["id"])
        waiting = asyncio.create_task(
            customer.post(
                f"/v1/shipments/{shipment['id']}/events",
                json={"status": "in_transit", "occurred_at": past},
            )
        )
        await asyncio.sleep(0.2)  # the event's transaction is now waiting for the lock
        # the holder records the broken promise, as the sweep would, and commits
        [locked] = await deadlines_lock_free(holder, shipment["id"])
        await transaction.commit()
    finally:
        await pool.release(holder)
    assert (await waiting).status_code == 201
    assert await pool.fetchval("select late from shipments where id = $1", shipment["id"]) is True
    assert await pool.fetchval("select count(*) from late_deliveries") == 1
    assert await deadlines.sweep(pool, datetime.now(UTC)) == 0
    assert await pool.fetchval("select count(*) from changes where kind = 'late'") == 1
    del locked


async def deadlines_lock_free(conn: asyncpg.Connection, shipment_id: str) -> list[str]:
    """Record the broken promise on an already locked row, in the caller's transaction."""
    from api.changes import log as change_log
    from api.shell.clock import utcnow
    from api.shipments import store

    shipment = store.shipment_from_row(await conn.fetchrow(store.GET, shipment_id))
    now = utcnow()
    assert shipment.break_promise(now)
    await store.save(conn, [shipment], {shipment.id: None})
    await change_log.append(conn, change_log.drain_changes(shipment, now))
    return [shipment.id]


async def test_a_transaction_cancelled_at_begin_gives_its_connection_back(pool: asyncpg.Pool):
    """Cancelled while BEGIN is in flight (as a worker is at shutdown), the
    connection still goes back to the pool, so closing the pool cannot hang."""
    import asyncio

    for _ in range(20):
        task = asyncio.create_task(_begin_and_wait(pool))
        await asyncio.sleep(0)  # the task is now awaiting BEGIN: cancel it there
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.wait_for(pool.close(), 5)


async def _begin_and_wait(pool: asyncpg.Pool) -> None:
    async with database.transaction(pool) as conn:
        await conn.execute("select pg_sleep(10)")


def _refused_tcp_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


@pytest.mark.parametrize("transport", ["unix socket gone", "tcp refused"])
async def test_a_database_that_is_not_there_is_database_unavailable_whatever_the_transport(
    transport: str, tmp_path: Path
):
    # no server in tmp_path: asyncpg raises FileNotFoundError for the socket; on TCP, ConnectionRefusedError
    url = f"postgresql://postgres@/postgres?host={tmp_path}" if transport == "unix socket gone" else _refused_tcp_url()
    with pytest.raises(database.DatabaseUnavailable) as caught:
        await database.create_pool(url, min_size=1, max_size=1)
    assert isinstance(caught.value.__cause__, OSError)


async def test_a_pool_with_no_connection_free_in_time_says_the_database_is_unavailable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(database, "ACQUIRE_TIMEOUT", 0.1)
    pool = await database.create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire():
            with pytest.raises(database.DatabaseUnavailable):
                await pool.fetchval("select 1")  # the pool's own helpers wait no longer than a transaction
            with pytest.raises(database.DatabaseUnavailable):
                async with database.transaction(pool):
                    pass
    finally:
        await pool.close()
