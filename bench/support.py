"""What the benchmarks share: a fresh migrated database, a free port, progress lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from api.shell.database import start_embedded_postgres
from api.shell.migrate import apply_migrations
from api.shell.settings import MIGRATIONS_DIR


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(label: str, *seed: str) -> Iterator[str]:
    """A migrated database of its own (on DATABASE_URL's server, or an embedded
    PostgreSQL in a temporary directory), with `seed` statements run in it;
    dropped afterwards."""
    with contextlib.ExitStack() as stack:
        server_url = os.environ.get("DATABASE_URL")
        if not server_url:
            pgdata = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"ontime-bench-{label}-"))) / "pgdata"
            say(f"starting an embedded PostgreSQL in {pgdata}")
            server = start_embedded_postgres(pgdata, cleanup_mode="delete")
            stack.callback(server.cleanup)
            server_url = server.get_uri("postgres")
        name = f"ontime_bench_{secrets.token_hex(4)}"
        url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))

        async def create() -> None:
            await execute(server_url, f'create database "{name}"')
            conn = await asyncpg.connect(url)
            try:
                await apply_migrations(conn, MIGRATIONS_DIR)
                for statement in seed:
                    await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(create())
        stack.callback(lambda: asyncio.run(execute(server_url, f'drop database "{name}" with (force)')))
        yield url


def wait_until_ready(process: subprocess.Popen, base_url: str, timeout: float = 60) -> None:
    """Until `ontime serve` answers /readyz; its exit, or the timeout, ends the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: ontime serve exited with {process.returncode}; its log is in bench/out/")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"bench: ontime serve was not ready within {timeout:.0f} s; its log is in bench/out/")
