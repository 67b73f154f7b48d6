"""`ontime demo` against a served ontime: shippers, shipments and carrier events
arrive through the API, and it says which keys sign in where."""

from __future__ import annotations

import asyncpg

from tests.e2e.conftest import RunOntime, StartServers


async def test_the_demo_seeds_shippers_and_posts_carrier_events(
    database_url: str, start_servers: StartServers, run_ontime: RunOntime
):
    (server,) = await start_servers(database_url)
    demo = run_ontime(["demo", "--url", server.url, "--rate", "20", "--seconds", "2", "--shipments", "2"], database_url)
    assert await demo.wait(30) == 0, demo.describe()
    assert "customer key ot_" in demo.stderr and "/console" in demo.stderr and "events" in demo.stderr
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("select count(*) from accounts") == 3
        assert await conn.fetchval("select count(*) from shipments") == 6
        assert await conn.fetchval("select count(*) from events") >= 10
    finally:
        await conn.close()
