"""Several real `ontime` processes on one database: starting together,
migrating together, revocation reaching every process's key cache (also
across a lost LISTEN connection), the body limit under real uvicorn, and the
embedded PostgreSQL that `make run` gives a new user."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import asyncpg
import httpx

from api.shell.migrate import read_migrations
from api.shell.settings import MIGRATIONS_DIR
from tests.e2e.conftest import RunOntime, Server, StartServers, embedded_postgres_pid

MIGRATIONS = [m.name for m in read_migrations(MIGRATIONS_DIR)]
REVOCATION_SECONDS = 1.0
ADMIN_KEY_LINE = re.compile(r"^admin key: (\S+)$", re.M)
APPLIED_LINE = re.compile(r"^applied migration (\S+)$", re.M)


async def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def applied_migrations(database_url: str) -> list[str]:
    return [r["name"] for r in await fetch(database_url, "select name from schema_migrations order by version")]


async def new_customer_key(admin: httpx.AsyncClient) -> dict:
    account = await admin.post("/v1/accounts", json={"name": "Acme"})
    assert account.status_code == 201, account.text
    key = await admin.post("/v1/keys", json={"role": "customer", "account_id": account.json()["id"]})
    assert key.status_code == 201, key.text
    return key.json()


async def status_with(server: Server, secret: str) -> int:
    async with server.client(secret) as client:
        return (await client.get("/v1/shipments")).status_code


async def until_caching(server: Server, admin: httpx.AsyncClient, database_url: str, timeout: float = 10.0) -> None:
    """Wait until `server` serves keys from its cache, i.e. its revocation
    listener is connected: a probe key used once, then revoked in the database
    without a notification, still works there only if it came from the cache."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = await new_customer_key(admin)
        assert await status_with(server, probe["secret"]) == 200
        await fetch(database_url, "update api_keys set revoked_at = now() where id = $1", probe["id"])
        if await status_with(server, probe["secret"]) == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{server.url} never served a key from its cache: is its listener connected?")


async def refused_within(server: Server, secret: str, seconds: float) -> float:
    """Seconds until `server` first refuses the key; fails after `seconds`."""
    start = time.monotonic()
    async with server.client(secret) as client:
        while True:
            status = (await client.get("/v1/shipments")).status_code
            elapsed = time.monotonic() - start
            if status == 401:
                return elapsed
            assert status == 200, status
            assert elapsed < seconds, f"{server.url} still accepts the revoked key {elapsed:.2f} s after revocation"
            await asyncio.sleep(0.02)


async def always_refused(server: Server, secret: str, seconds: float) -> None:
    """Every request with the key, for `seconds`, is refused."""
    deadline = time.monotonic() + seconds
    async with server.client(secret) as client:
        while time.monotonic() < deadline:
            r = await client.get("/v1/shipments")
            assert r.status_code == 401, f"a revoked key worked again on {server.url}: {r.status_code} {r.text}"
            await asyncio.sleep(0.02)


async def revoke(admin: httpx.AsyncClient, key: dict) -> None:
    r = await admin.delete(f"/v1/keys/{key['id']}")
    assert r.status_code == 204, r.text


# -- starting and migrating together -------------------------------------------------


async def test_two_servers_started_together_on_an_empty_database_migrate_it_once(
    empty_database_url: str, start_servers: StartServers
):
    servers = await start_servers(empty_database_url, 2)

    assert await applied_migrations(empty_database_url) == MIGRATIONS
    applied = [name for s in servers for name in APPLIED_LINE.findall(s.stderr)]
    assert sorted(applied) == sorted(MIGRATIONS), "each migration applied by exactly one of the two"
    admins = await fetch(empty_database_url, "select id from api_keys where role = 'admin'")
    assert len(admins) == 1
    for server in servers:
        async with server.client() as admin:
            assert (await admin.post("/v1/accounts", json={"name": "Acme"})).status_code == 201


async def test_two_servers_started_together_without_a_bootstrap_key_mint_and_print_one_admin_key(
    empty_database_url: str, start_servers: StartServers
):
    servers = await start_servers(empty_database_url, 2, ONTIME_BOOTSTRAP_ADMIN_KEY=None)

    printed = [secret for s in servers for secret in ADMIN_KEY_LINE.findall(s.stdout)]
    assert len(printed) == 1, [s.stdout for s in servers]
    assert len(await fetch(empty_database_url, "select id from api_keys where role = 'admin'")) == 1
    for server in servers:
        async with server.client(printed[0]) as admin:
            assert (await admin.post("/v1/accounts", json={"name": "Acme"})).status_code == 201


async def test_two_migrate_commands_at_once_on_an_empty_database_both_succeed_and_apply_each_migration_once(
    empty_database_url: str, run_ontime: RunOntime
):
    commands = [run_ontime(["migrate"], empty_database_url) for _ in range(2)]
    exits = await asyncio.gather(*(c.wait(30) for c in commands))

    assert exits == [0, 0], [c.describe() for c in commands]
    assert await applied_migrations(empty_database_url) == MIGRATIONS
    applied = [name for c in commands for name in APPLIED_LINE.findall(c.stderr)]
    assert sorted(applied) == sorted(MIGRATIONS)
    assert len(await fetch(empty_database_url, "select id from api_keys where role = 'admin'")) == 1


# -- revocation across processes -----------------------------------------------------


async def test_a_key_revoked_through_one_process_is_refused_by_the_other_within_a_second(
    database_url: str, two_servers: list[Server]
):
    a, b = two_servers
    async with a.client() as admin:
        await until_caching(b, admin, database_url)
        key = await new_customer_key(admin)
        assert await status_with(b, key["secret"]) == 200
        assert await status_with(b, key["secret"]) == 200  # now from B's cache
        await revoke(admin, key)

    await refused_within(b, key["secret"], REVOCATION_SECONDS)
    await always_refused(b, key["secret"], 0.5)
    assert await status_with(a, key["secret"]) == 401


async def terminate_other_backends(database_url: str) -> int:
    """The listener connects without an application_name and, once idle, its
    last query is a health check anyone could have run, so nothing tells B's
    LISTEN connection apart: end every connection to the database but ours."""
    rows = await fetch(
        database_url,
        """select pg_terminate_backend(pid) from pg_stat_activity
           where datname = current_database() and pid <> pg_backend_pid()""",
    )
    return len(rows)


async def test_a_revocation_is_refused_within_a_second_while_the_listen_connection_is_down_and_once_it_is_back(
    database_url: str, two_servers: list[Server]
):
    a, b = two_servers
    async with a.client() as admin:
        await until_caching(b, admin, database_url)
        while_down, once_back = await new_customer_key(admin), await new_customer_key(admin)
        for key in (while_down, once_back):
            assert await status_with(b, key["secret"]) == 200
            assert await status_with(b, key["secret"]) == 200

        assert await terminate_other_backends(database_url) >= 2  # both listeners at least
        await revoke(admin, while_down)
        await refused_within(b, while_down["secret"], REVOCATION_SECONDS)
        # across B's listener coming back (it retries after 0.5 s)
        await always_refused(b, while_down["secret"], 1.0)

        await until_caching(b, admin, database_url)  # reconnected, trusting its cache again
        assert await status_with(b, once_back["secret"]) == 200
        assert await status_with(b, once_back["secret"]) == 200
        await revoke(admin, once_back)
        await refused_within(b, once_back["secret"], REVOCATION_SECONDS)
        await always_refused(b, once_back["secret"], 0.5)
        await always_refused(b, while_down["secret"], 0.1)


async def until_activity(database_url: str, condition: str, timeout: float = 10.0) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await fetch(
            database_url,
            f"""select pid, state, wait_event_type from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid() and ({condition})""",
        )
        if rows:
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError(f"no backend with {condition} within {timeout} s")


async def test_a_key_read_from_the_database_just_before_its_revocation_is_not_cached_past_it(
    database_url: str, two_servers: list[Server]
):
    """B reads a key (not revoked yet), and before B has stored what it read
    in its cache, the key is revoked and B's listener hears of it. B pauses
    between the two for real (SIGSTOP), as a busy or descheduled process
    does. The request in flight may succeed; no later one may."""
    a, b = two_servers
    async with a.client() as admin:
        await until_caching(b, admin, database_url)
        key = await new_customer_key(admin)  # never used on B: B must read it
        blocker = await asyncpg.connect(database_url)
        try:
            # hold B's read of the key in the database until B is paused
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("lock table api_keys in access exclusive mode")
            in_flight = asyncio.create_task(status_with(b, key["secret"]))
            (waiting,) = await until_activity(
                database_url, "wait_event_type = 'Lock' and query like '%from api_keys where secret_hash%'"
            )
            os.kill(b.pid, signal.SIGSTOP)
            try:
                await transaction.rollback()  # B's read runs now: the key is not revoked
                await until_activity(database_url, f"pid = {waiting['pid']} and state <> 'active'")
                await revoke(admin, key)  # through A: B's listener is sent the notification
                await asyncio.sleep(0.2)
            finally:
                os.kill(b.pid, signal.SIGCONT)
            assert await asyncio.wait_for(in_flight, 10) in (200, 401)
        finally:
            await blocker.close()

    await refused_within(b, key["secret"], REVOCATION_SECONDS)
    await always_refused(b, key["secret"], 0.5)


# -- the body limit under uvicorn -------------------------------------------------------


async def test_a_body_one_byte_over_a_mebibyte_is_a_413_problem_and_the_server_stays_up(
    database_url: str, start_servers: StartServers
):
    (server,) = await start_servers(database_url)
    async with server.client() as admin:
        customer = await new_customer_key(admin)
    mebibyte = 1024 * 1024

    def body(size: int) -> bytes:
        start = b'{"carrier": "dhl", "tracking_number": "BIG1", "promised_by": "2030-01-10T18:00:00Z", "reference": "'
        end = b'"}'
        return start + b"x" * (size - len(start) - len(end)) + end

    async with server.client(customer["secret"]) as client:
        headers = {"Content-Type": "application/json"}
        over = await client.post("/v1/shipments", content=body(mebibyte + 1), headers=headers)
        assert over.status_code == 413, over.text
        assert over.headers["content-type"].startswith("application/problem+json")
        assert over.json()["status"] == 413

        async def chunks():  # no Content-Length: the limit must hold for a streamed body too
            data = body(mebibyte + 1)
            for i in range(0, len(data), 64 * 1024):
                yield data[i : i + 64 * 1024]

        streamed = await client.post("/v1/shipments", content=chunks(), headers=headers)
        assert streamed.status_code == 413, streamed.text
        assert streamed.headers["content-type"].startswith("application/problem+json")

        at_limit = await client.post("/v1/shipments", content=body(mebibyte), headers=headers)
        assert at_limit.status_code == 400, at_limit.text  # read, then refused for its too-long reference

        assert server.process.poll() is None
        assert (await client.get("/readyz")).status_code == 200
        created = await client.post(
            "/v1/shipments", json={"carrier": "dhl", "tracking_number": "SMALL1", "promised_by": "2030-01-10T18:00:00Z"}
        )
        assert created.status_code == 201, created.text
    assert await applied_migrations(database_url) == MIGRATIONS
    assert len(await fetch(database_url, "select id from shipments")) == 1


# -- the embedded PostgreSQL (what `make run` does for a new user) ------------------------


async def test_serve_without_database_url_starts_embedded_postgres_and_prints_an_admin_key_once(
    data_dir: Path, start_servers: StartServers
):
    env = {"ONTIME_DATA_DIR": str(data_dir), "ONTIME_BOOTSTRAP_ADMIN_KEY": None}
    (first,) = await start_servers(None, **env)
    printed = ADMIN_KEY_LINE.findall(first.stdout)
    assert len(printed) == 1, first.stdout
    async with first.client(printed[0]) as admin:
        assert (await admin.post("/v1/accounts", json={"name": "Acme"})).status_code == 201
    postgres = embedded_postgres_pid(data_dir / "pgdata")
    assert first.stop(signal.SIGINT) == 0, first.describe()  # Ctrl-C, as under `make run`
    await until_stopped(data_dir / "pgdata", postgres)
    assert embedded_postgres_pid(data_dir / "pgdata") is None, "Ctrl-C stops the embedded PostgreSQL too"

    (second,) = await start_servers(None, **env)
    assert ADMIN_KEY_LINE.findall(second.stdout) == [], second.stdout
    assert "admin key" not in second.stdout
    async with second.client(printed[0]) as admin:
        r = await admin.get("/v1/shipments")
        assert r.status_code == 200, r.text
    assert embedded_postgres_pid(data_dir / "pgdata") is not None


async def until_stopped(pgdata: Path, postgres: int | None, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while postgres is not None and embedded_postgres_pid(pgdata) == postgres and time.monotonic() < deadline:  # noqa: ASYNC110 (another process: no event to await)
        await asyncio.sleep(0.05)


async def test_stopping_serve_with_sigterm_stops_the_embedded_postgres_it_started(
    data_dir: Path, start_servers: StartServers
):
    """SIGTERM is how docker, systemd and Kubernetes stop a process; Ctrl-C is
    checked above."""
    (server,) = await start_servers(None, ONTIME_DATA_DIR=str(data_dir))
    pgdata = data_dir / "pgdata"
    postgres = embedded_postgres_pid(pgdata)
    assert postgres is not None
    server.stop(signal.SIGTERM)
    await until_stopped(pgdata, postgres)
    assert embedded_postgres_pid(pgdata) is None, (
        f"the embedded PostgreSQL (pid {postgres}) outlived `ontime serve` stopped by SIGTERM "
        f"(exit {server.process.returncode}); handle list: {(pgdata / '.handle_pids.json').read_text()}"
    )
