"""Fixtures on a real PostgreSQL: the server at DATABASE_URL, or an embedded one started for this run.

The migrations are applied once, to a template database; each test gets a copy of it,
which takes milliseconds, so every test can have a database of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from api.shell.database import create_pool, start_embedded_postgres
from api.shell.migrate import apply_migrations
from api.shell.settings import MIGRATIONS_DIR

# its INFO lines (every pg_ctl call, at exit too) drown pytest's summary
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def with_database(url: str, database: str) -> str:
    """The same server and credentials as url, on another database.

    Works for TCP URLs and for the unix-socket form postgresql://postgres:@/postgres?host=/path.
    """
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def execute_on(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def temporary_database(server_url: str, *, template: str = "template1") -> AsyncIterator[str]:
    name = f"ontime_test_{uuid.uuid4().hex[:12]}"
    await execute_on(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield with_database(server_url, name)
    finally:
        await execute_on(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL on the test server, for creating and dropping databases."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    # On tmpfs a database copy takes ~10 ms; on a busy ext4, creating its few hundred files takes ~200 ms.
    ram_disk = Path("/dev/shm")
    pgdata = Path(tempfile.mkdtemp(prefix="ontime-test-", dir=ram_disk if ram_disk.is_dir() else None))
    server = start_embedded_postgres(pgdata, cleanup_mode="delete")
    yield server.get_uri("postgres")
    server.cleanup()


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    """The name of a database migrated from MIGRATIONS_DIR, for tests to copy."""
    name = f"ontime_tpl_{os.getpid()}"

    async def migrate() -> None:
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await apply_migrations(conn, MIGRATIONS_DIR)
        finally:
            await conn.close()

    asyncio.run(execute_on(server_url, f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(migrate())
        yield name
    finally:
        asyncio.run(execute_on(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    """A migrated database of this test's own."""
    async with temporary_database(server_url, template=template_database) as url:
        yield url


@pytest.fixture
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """A database of this test's own with no migrations applied."""
    async with temporary_database(server_url) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection from the test's pool, so it decodes json the way the app does."""
    async with pool.acquire() as connection:
        yield connection
