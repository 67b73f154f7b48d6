"""Where one `GET /v1/shipments/{id}` spends its time: `python -m bench.profile_poll`.

The real app, its lifespan run, on a fresh database (DATABASE_URL's server, as
bench/harness.py makes it), called as an ASGI app in this process with no HTTP
server and no client around it, a few thousand times, under cProfile. Each
function's own time is put in one bucket by where the function lives: the key
check (api/shell/auth, keys), the database round trip (asyncpg, the event
loop's socket work), the ETag, encoding (msgspec, api/wire) and the framework
(Litestar and everything else). Prints a table of microseconds a request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from api.app import create_app
from api.shell import keys
from api.shell.settings import Settings
from bench import harness
from bench.core import bearer, create_polled_shipment
from bench.harness import call

# where a function's own time counts as the database round trip (asyncpg, the store,
# the event loop's socket work); bench.profile_ingest uses the same
DATABASE_MARKS = (
    "asyncpg",
    "api/shipments/store.py",
    "api/shell/database.py",
    "selector",
    "epoll",
    "_socket",
    "uvloop",
    "asyncio/base_events",
    "asyncio/events",
)
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("key check", ("api/shell/auth.py", "api/shell/keys.py", "hashlib", "_hashlib")),
    ("ETag", ("etag_of", "matches", "domain/promise.py", "is_late", "is_at_risk", "is_stale")),
    ("database round trip", DATABASE_MARKS),
    ("encoding", ("msgspec", "api/wire.py", "json_response")),
)


def bucket(filename: str, function: str) -> str:
    where = f"{filename}:{function}"
    for name, marks in BUCKETS:
        if any(mark in where for mark in marks):
            return name
    return "framework"


async def asgi_call(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight through the ASGI app: no server, no client."""
    sized = [(b"content-length", str(len(body)).encode())] if body else []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()] + sized,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status, answer, answered = 0, {}, b""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, answer, answered
        if message["type"] == "http.response.start":
            status, answer = message["status"], dict(message["headers"])
        else:
            answered += message.get("body", b"")

    await app(scope, receive, send)
    return status, answer, answered


@contextlib.asynccontextmanager
async def app_in_process(
    database_url: str, admin_key: str, key_body: dict[str, str]
) -> AsyncIterator[tuple[Any, httpx.AsyncClient, str, str]]:
    """The real app, its lifespan running, on a pool of two; an account and a key
    (`key_body`; a customer key gets the account) made through the API.
    Yields the app, a client calling it in process, the account id and the key."""
    settings = Settings(database_url=database_url, bootstrap_admin_key=admin_key, pool_min_size=2, pool_max_size=2)
    app = create_app(settings, database_url=database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await keys.ensure_admin_key(conn, admin_key)
    finally:
        await conn.close()
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            account = await call(http, "POST", "/v1/accounts", {"name": "Profile"}, admin_key)
            body = {"account_id": account["id"], **key_body} if key_body["role"] == "customer" else key_body
            key = (await call(http, "POST", "/v1/keys", body, admin_key))["secret"]
            yield app, http, account["id"], key


async def profile(database_url: str, admin_key: str, requests: int) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    async with app_in_process(database_url, admin_key, {"role": "customer"}) as (app, http, _, key):
        shipment_id = await create_polled_shipment(http, key)
        path = f"/v1/shipments/{shipment_id}"
        status, answer, _ = await asgi_call(app, "GET", path, bearer(key))
        assert status == 200, status
        etag = answer[b"etag"].decode()
        for label, headers, expected in (
            ("200", bearer(key), 200),
            ("304", bearer(key) | {"If-None-Match": etag}, 304),
        ):
            figures[label] = await profile_one(lambda h=headers: asgi_call(app, "GET", path, h), expected, requests)
    return figures


async def profile_one(
    request: Callable[[], Awaitable[tuple[int, dict[bytes, bytes], bytes]]], expected: int, requests: int
) -> dict[str, float]:
    for _ in range(200):  # warm: caches filled, code paths taken once
        assert (await request())[0] == expected
    started = time.perf_counter()
    for _ in range(requests):
        await request()
    wall = (time.perf_counter() - started) / requests * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        await request()
    profiler.disable()
    if os.environ.get("PROFILE_DUMP"):
        profiler.dump_stats(f"{os.environ['PROFILE_DUMP']}-{expected}.prof")
    totals: dict[str, float] = defaultdict(float)
    stats: Any = pstats.Stats(profiler).stats
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in stats.items():
        totals[bucket(filename, function)] += own
    if os.environ.get("PROFILE_TOP"):
        top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:40]
        for (filename, line, function), (_cc, nc, own, _cum, _callers) in top:
            print(
                f"{own / requests * 1e6:7.1f} {nc // requests:4d} {bucket(filename, function):20s} {filename}:{line}:{function}"
            )
    per = {name: seconds / requests * 1e6 for name, seconds in totals.items()}
    profiled = sum(per.values())
    # cProfile slows everything alike-ish: scale its shares to the unprofiled wall time
    return {name: value / profiled * wall for name, value in per.items()} | {"total (unprofiled wall)": wall}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_poll")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    os.environ.setdefault("ONTIME_DATA_DIR", str(harness.OUT_DIR / "data"))
    admin_key = harness.admin_key()
    with harness.fresh_database("profile") as database_url:
        figures = asyncio.run(profile(database_url, admin_key, args.requests))
    names = ["key check", "database round trip", "ETag", "encoding", "framework", "total (unprofiled wall)"]
    print("| part | 200 µs/request | 304 µs/request |\n| --- | --- | --- |")
    for name in names:
        print(f"| {name} | {figures['200'].get(name, 0):.0f} | {figures['304'].get(name, 0):.0f} |")


if __name__ == "__main__":
    main()
