"""The core service against its floors, measured in one run: `python -m bench.core`.

Polling: `GET /v1/shipments/{id}` with a customer key, plain (200) and with
If-None-Match (304), against bench/floor_app.py, a bare Litestar handler doing
one primary-key fetch of the same row. Ingest: `POST /v1/events` in batches of
500 against raw asyncpg `executemany` of the same rows into `events`, from this
process. Both HTTP servers are one uvicorn process each with the same settings
and pool size, on the same fresh database; wrk, a process of its own, loads them.

It prints figures and ratios to the floors and asserts nothing: a benchmark
reports. The same table goes to bench/out/core.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec

from api.shell.database import start_embedded_postgres
from api.shell.ids import new_id
from api.shell.migrate import apply_migrations
from api.shell.settings import MIGRATIONS_DIR
from bench.support import execute as execute_on
from bench.wrk import Load, run_wrk

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
HOST = "127.0.0.1"

POLL_AIM = 0.8
INGEST_AIM = 0.3
INGEST_AIM_PER_SECOND = 5_000

# The ingest targets, made in SQL, and the event every batch item carries.
CARRIER = "benchpost"
TRACKING_PREFIX = "BENCH"
EVENT = {
    "status": "in_transit",
    "location": {"city": "Lyon", "country": "FR"},
    "description": "Departed sorting hub",
}
# One batch item as a format string, filled by bench/lua/ingest.lua's
# string.format and by Python's % alike, in this order: target number (1..N),
# run tag, thread id, batch number, index in the batch, occurred_at.
ITEM = msgspec.json.encode(
    {
        "carrier": CARRIER,
        "tracking_number": TRACKING_PREFIX + "%06d",
        "event_id": "%s-%d-%d-%d",
        "occurred_at": "%s",
        **EVENT,
    }
).decode()
# Each load run's events get occurred_at values of their own, later than the
# previous run's, so every event is the newest of its shipment and moves it.
RUN_TAGS = ("check", "warm", "run")
RUN_SPACING = timedelta(days=10)

INSERT_EVENT = """
insert into events (shipment_id, key, event_id, status, occurred_at, location,
                    description, reason, estimated_delivery, received_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""

INSERT_TARGETS = """
insert into shipments (id, account_id, carrier, tracking_number, promised_by, origin, destination)
select id, $3, $4, tracking_number, $5, $6, $7
from unnest($1::text[], $2::text[]) as t(id, tracking_number)
"""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- figures -------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    per_second: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    # CPU time the server process spent per request or event: steadier than
    # throughput when other work shares the machine
    server_cpu_us: float | None = None

    @classmethod
    def of(cls, measured: Measured, items_per_request: int = 1) -> Figure:
        load, cpu = measured.load, measured.server_cpu
        items = load.answered * items_per_request
        return cls(
            per_second=load.per_second * items_per_request,
            p50_ms=load.p50_ms,
            p99_ms=load.p99_ms,
            errors=load.bad_status + load.socket_errors,
            server_cpu_us=cpu * 1e6 / items if cpu is not None and items else None,
        )


@dataclass(frozen=True)
class Comparison:
    scenario: str
    unit: str
    ontime: Figure
    floor: Figure
    aim_ratio: float
    aim_per_second: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.ontime.per_second / self.floor.per_second if self.floor.per_second else 0.0

    @property
    def met(self) -> bool:
        fast_enough = self.aim_per_second is None or self.ontime.per_second >= self.aim_per_second
        return self.ratio >= self.aim_ratio and fast_enough

    def aim(self) -> str:
        aim = f">= {self.aim_ratio:.2f}"
        if self.aim_per_second is not None:
            aim += f" and >= {self.aim_per_second:,.0f} {self.unit}"
        return aim


# -- the database --------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    """The same server as url, on another database (TCP and unix-socket URLs alike)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@contextlib.asynccontextmanager
async def embedded_server() -> AsyncIterator[str]:
    """An embedded PostgreSQL in a temporary directory, deleted afterwards."""
    # its INFO lines (every pg_ctl call) would drown the progress lines
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    directory = Path(tempfile.mkdtemp(prefix="ontime-bench-"))
    try:
        server = await asyncio.to_thread(start_embedded_postgres, directory / "pgdata", cleanup_mode="delete")
        try:
            yield server.get_uri("postgres")
        finally:
            await asyncio.to_thread(server.cleanup)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """A fresh, migrated database for this run, on DATABASE_URL's server or an
    embedded one; dropped at the end."""
    async with contextlib.AsyncExitStack() as stack:
        server_url = os.environ.get("DATABASE_URL")
        if not server_url:
            progress("starting an embedded PostgreSQL…")
            server_url = await stack.enter_async_context(embedded_server())
        name = f"ontime_bench_{secrets.token_hex(4)}"
        await execute_on(server_url, f'create database "{name}"')
        stack.push_async_callback(execute_on, server_url, f'drop database "{name}" with (force)')
        url = with_database(server_url, name)
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn, MIGRATIONS_DIR)
        finally:
            await conn.close()
        yield url


async def count_events(database_url: str, key_prefix: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("select count(*) from events where key like $1", key_prefix + "%")
    finally:
        await conn.close()


# -- the servers ---------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(name: str, module_argv: list[str], env: dict[str, str]) -> Iterator[Server]:
    """`python -m <module_argv> --host H --port P`, its output in bench/out/<name>.log,
    stopped on the way out whatever happened."""
    port = free_port()
    log = OUT_DIR / f"{name}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", *module_argv, "--host", HOST, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # our own to stop: a Ctrl-C reaches this process, which stops it in order
            start_new_session=True,
        )
    try:
        yield Server(name, f"http://{HOST}:{port}", process, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def wait_ready(server: Server, path: str, status: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=server.url) as http:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.process.returncode}; its log ({server.log}):\n"
                    + server.log.read_text(errors="replace")[-3000:]
                )
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(path)).status_code == status:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s; see {server.log}")
            await asyncio.sleep(0.2)


def server_env(database_url: str, admin_secret: str, pool_size: int) -> dict[str, str]:
    """The environment of both servers: the same database and pool size."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "ONTIME_BOOTSTRAP_ADMIN_KEY": admin_secret,
        "ONTIME_POOL_MIN_SIZE": str(pool_size),
        "ONTIME_POOL_MAX_SIZE": str(pool_size),
        "ONTIME_DATA_DIR": str(OUT_DIR / "data"),
    }


# -- what the scenarios use ----------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    customer_key: str
    carrier_key: str
    shipment_id: str
    etag: str
    # ingest targets: targets[k - 1] has tracking number BENCH<k>
    targets: list[str]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(http: httpx.AsyncClient, method: str, path: str, key: str, body: object, status: int) -> dict:
    response = await http.request(method, path, json=body, headers=bearer(key))
    if response.status_code != status:
        raise RuntimeError(f"{method} {path}: expected {status}, got {response.status_code}: {response.text}")
    return response.json()


async def prepare(ontime: Server, admin_secret: str, database_url: str, targets: int) -> Fixture:
    """An account with a customer and a carrier key, the polled shipment made
    through the API with a few events, and the ingest targets made in SQL."""
    async with httpx.AsyncClient(base_url=ontime.url) as http:
        account = await call(http, "POST", "/v1/accounts", admin_secret, {"name": "Bench"}, 201)
        customer_key = await new_key(http, admin_secret, {"role": "customer", "account_id": account["id"]})
        carrier_key = await new_key(http, admin_secret, {"role": "carrier", "carrier": CARRIER})
        shipment_id = await create_polled_shipment(http, customer_key)
        polled = await http.get(f"/v1/shipments/{shipment_id}", headers=bearer(customer_key))
    return Fixture(
        customer_key=customer_key,
        carrier_key=carrier_key,
        shipment_id=shipment_id,
        etag=polled.headers["etag"],
        targets=await create_targets(database_url, account["id"], targets),
    )


async def new_key(http: httpx.AsyncClient, admin_secret: str, key: dict[str, str]) -> str:
    return (await call(http, "POST", "/v1/keys", admin_secret, key, 201))["secret"]


async def create_polled_shipment(http: httpx.AsyncClient, key: str) -> str:
    now = datetime.now(UTC)
    shipment = await call(
        http,
        "POST",
        "/v1/shipments",
        key,
        {
            "carrier": "dhl",
            "tracking_number": "JD014600000000001",
            "reference": "order-8812",
            "promised_by": (now + timedelta(days=3)).isoformat(),
            "origin": {"city": "Zaragoza", "country": "ES", "postal_code": "50001"},
            "destination": {"city": "Lyon", "country": "FR", "postal_code": "69002"},
            "recipient": {"name": "Ana Ruiz", "email": "ana@example.com", "phone": "+34 600 000 000"},
        },
        201,
    )
    events = [
        {
            "status": status,
            "occurred_at": (now - timedelta(hours=hours)).isoformat(),
            "event_id": f"e{n}",
            "location": place,
        }
        for n, (status, hours, place) in enumerate(
            [
                ("label_created", 30, {"city": "Zaragoza", "country": "ES"}),
                ("in_transit", 20, {"city": "Barcelona", "country": "ES"}),
                ("in_transit", 5, {"city": "Lyon", "country": "FR"}),
            ]
        )
    ]
    events[-1]["estimated_delivery"] = (now + timedelta(days=1)).isoformat()
    await call(http, "POST", f"/v1/shipments/{shipment['id']}/events", key, events, 201)
    return shipment["id"]


async def create_targets(database_url: str, account_id: str, count: int) -> list[str]:
    ids = [new_id("shp") for _ in range(count)]
    numbers = [f"{TRACKING_PREFIX}{k:06d}" for k in range(1, count + 1)]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            INSERT_TARGETS,
            ids,
            numbers,
            account_id,
            CARRIER,
            datetime.now(UTC) + timedelta(days=30),
            '{"city": "Zaragoza", "country": "ES"}',
            '{"city": "Lyon", "country": "FR"}',
        )
    finally:
        await conn.close()
    return ids


# -- load ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSettings:
    seconds: int
    connections: int
    timeout_seconds: int = 10

    @property
    def warm_up_seconds(self) -> int:
        return min(3, max(1, self.seconds // 5))


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time a process has used so far; None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measured:
    load: Load
    server_cpu: float | None


async def warm_then_measure(
    label: str,
    server: Server,
    path: str,
    script: str,
    script_args: Callable[[str], list[str]],
    settings: LoadSettings,
) -> Measured:
    """A short warm-up, then the measured run; script_args gets the run's tag."""
    url = server.url + path

    async def load(tag: str, seconds: int) -> Load:
        return await run_wrk(
            url, script, script_args(tag), seconds=seconds,
            connections=settings.connections, timeout_seconds=settings.timeout_seconds,
        )  # fmt: skip

    progress(f"{label}: warming up {settings.warm_up_seconds}s…")
    await load("warm", settings.warm_up_seconds)
    progress(f"{label} {settings.seconds}s…")
    cpu_before = cpu_seconds(server.process.pid)
    measured = await load("run", settings.seconds)
    cpu_after = cpu_seconds(server.process.pid)
    (OUT_DIR / f"wrk-{label.replace(' ', '-')}.txt").write_text(measured.output)
    server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Measured(measured, server_cpu)


async def expect_status(
    method: str, url: str, headers: dict[str, str], status: int, body: bytes | None = None
) -> httpx.Response:
    """One request before loading, so a wrong setup is not measured as a figure."""
    async with httpx.AsyncClient() as http:
        response = await http.request(method, url, headers=headers, content=body)
    if response.status_code != status:
        raise RuntimeError(f"{url}: expected {status}, got {response.status_code}: {response.text[:500]}")
    return response


# -- polling -------------------------------------------------------------------


async def poll(label: str, server: Server, fixture: Fixture, etag: str | None, settings: LoadSettings) -> Measured:
    path = f"/v1/shipments/{fixture.shipment_id}"
    args = [fixture.customer_key] + ([etag] if etag else [])
    headers = bearer(fixture.customer_key) | ({"If-None-Match": etag} if etag else {})
    await expect_status("GET", server.url + path, headers, 304 if etag else 200)
    return await warm_then_measure(label, server, path, "poll", lambda _tag: args, settings)


async def compare_polling(ontime: Server, floor: Server, fixture: Fixture, settings: LoadSettings) -> list[Comparison]:
    floor_load = Figure.of(await poll("polling floor", floor, fixture, None, settings))
    plain = Figure.of(await poll("polling ontime", ontime, fixture, None, settings))
    conditional = Figure.of(await poll("polling ontime 304", ontime, fixture, fixture.etag, settings))
    return [
        Comparison("GET /v1/shipments/{id} (200)", "req/s", plain, floor_load, POLL_AIM),
        Comparison("same, If-None-Match (304)", "req/s", conditional, floor_load, POLL_AIM),
    ]


# -- ingest --------------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    """Where each batch item goes: batch n, item i addresses target
    (n * batch + i) mod targets, as bench/lua/ingest.lua does."""

    targets: list[str]
    batch: int
    first_occurred_at: datetime

    def occurred_at(self, tag: str, batch_number: int) -> datetime:
        return self.first_occurred_at + RUN_SPACING * RUN_TAGS.index(tag) + timedelta(seconds=batch_number)

    def target_number(self, batch_number: int, index: int) -> int:
        return (batch_number * self.batch + index) % len(self.targets) + 1

    def wrk_args(self, carrier_key: str, tag: str) -> list[str]:
        first = int(self.occurred_at(tag, 0).timestamp())
        return [carrier_key, tag, str(len(self.targets)), str(self.batch), str(first), ITEM]

    def body(self, tag: str, batch_number: int) -> bytes:
        occurred_at = self.occurred_at(tag, batch_number).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = [
            ITEM % (self.target_number(batch_number, i), tag, 1, batch_number, i, occurred_at)
            for i in range(self.batch)
        ]
        return ("[" + ",".join(items) + "]").encode()

    def rows(self, batch_number: int) -> list[tuple]:
        """Batch n as the floor inserts it: the same columns and values as ontime stores."""
        occurred_at = self.occurred_at("run", batch_number)
        location = msgspec.json.encode(EVENT["location"]).decode()
        received_at = datetime.now(UTC)
        return [
            (
                self.targets[self.target_number(batch_number, i) - 1],
                f"floor-{batch_number}-{i}",
                f"floor-{batch_number}-{i}",
                EVENT["status"],
                occurred_at,
                location,
                EVENT["description"],
                None,
                None,
                received_at,
            )
            for i in range(self.batch)
        ]


async def ingest_ontime(
    ontime: Server, fixture: Fixture, ingest: Ingest, database_url: str, settings: LoadSettings
) -> tuple[Measured, list[str]]:
    """wrk posting new batches; notes say what went wrong, if anything did."""
    headers = bearer(fixture.carrier_key) | {"Content-Type": "application/json"}
    check = await expect_status("POST", f"{ontime.url}/v1/events", headers, 200, ingest.body("check", 0))
    if check.json()["accepted"] != ingest.batch:
        raise RuntimeError(f"the check batch was not accepted whole: {check.text[:500]}")
    measured = await warm_then_measure(
        "ingest ontime",
        ontime,
        "/v1/events",
        "ingest",
        lambda tag: ingest.wrk_args(fixture.carrier_key, tag),
        settings,
    )
    sent, stored = measured.load.answered * ingest.batch, await count_events(database_url, "run-")
    notes = [f"answered batches held {sent} events but only {stored} were stored"] if stored < sent else []
    return measured, notes


async def ingest_floor(database_url: str, ingest: Ingest, events: int, connections: int) -> Figure:
    """Raw executemany of `events` rows, batch by batch, on `connections`
    connections of this process's own."""
    batches = [ingest.rows(n) for n in range(events // ingest.batch)]
    pool = await asyncpg.create_pool(database_url, min_size=connections, max_size=connections)
    try:
        queue = iter(batches)

        async def insert_batches() -> None:
            async with pool.acquire() as conn:
                for rows in queue:  # shared: each batch is taken by one worker
                    await conn.executemany(INSERT_EVENT, rows)

        started = time.perf_counter()
        await asyncio.gather(*(insert_batches() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return Figure(per_second=len(batches) * ingest.batch / elapsed)


async def compare_ingest(
    ontime: Server, fixture: Fixture, database_url: str, batch: int, settings: LoadSettings
) -> Comparison:
    ingest = Ingest(fixture.targets, batch, datetime.now(UTC).replace(microsecond=0) - 4 * RUN_SPACING)
    measured, notes = await ingest_ontime(ontime, fixture, ingest, database_url, settings)
    events = max(measured.load.answered, settings.connections) * batch
    progress(f"ingest floor: the same {events:,} events by executemany…")
    floor = await ingest_floor(database_url, ingest, events, settings.connections)
    return Comparison(
        f"POST /v1/events ({batch}/batch)",
        "events/s",
        Figure.of(measured, batch),
        floor,
        INGEST_AIM,
        INGEST_AIM_PER_SECOND,
        notes,
    )


# -- the report ----------------------------------------------------------------


def describe(figure: Figure, unit: str) -> str:
    text = f"{figure.per_second:,.0f} {unit}"
    if figure.p50_ms is not None:
        text += f"  p50 {figure.p50_ms:.1f} p99 {figure.p99_ms:.1f} ms"
    if figure.server_cpu_us is not None:
        per = unit.removesuffix("/s").removesuffix("s")
        text += f"  server cpu {figure.server_cpu_us:.0f} µs/{per}"
    if figure.errors:
        text += f"  ({figure.errors} errors)"
    return text


def table(comparisons: list[Comparison]) -> str:
    header = ("scenario", "ontime", "floor", "ratio", "aim", "met")
    rows = [header] + [
        (
            c.scenario,
            describe(c.ontime, c.unit),
            describe(c.floor, c.unit),
            f"{c.ratio:.2f}",
            c.aim(),
            "yes" if c.met else "no",
        )
        for c in comparisons
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for c in comparisons:
        lines += [f"note ({c.scenario}): {note}" for note in c.notes]
    return "\n".join(lines)


def as_json(comparisons: list[Comparison], options: argparse.Namespace) -> bytes:
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": vars(options),
        "results": [asdict(c) | {"ratio": round(c.ratio, 3), "met": c.met} for c in comparisons],
    }
    return msgspec.json.format(msgspec.json.encode(report))


# -- the run -------------------------------------------------------------------


async def run(options: argparse.Namespace) -> list[Comparison]:
    # a SIGTERM stops the run as a Ctrl-C does: servers and database go away
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    poll_settings = LoadSettings(options.seconds, options.poll_connections)
    ingest_settings = LoadSettings(options.seconds, options.ingest_connections, timeout_seconds=60)
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(bench_database())
        progress("starting servers…")
        admin_secret = "bench-admin-" + secrets.token_urlsafe(24)
        env = server_env(database_url, admin_secret, options.pool_size)
        ontime_argv = ["api.cli", "serve", "--log-level", "warning"]
        ontime = stack.enter_context(running_server("ontime", ontime_argv, env))
        floor = stack.enter_context(running_server("floor", ["bench.floor_app"], env))
        await wait_ready(ontime, "/readyz", 200)
        await wait_ready(floor, "/v1/shipments/shp_none", 404)
        progress(f"creating an account, keys, the polled shipment and {options.targets:,} ingest targets…")
        fixture = await prepare(ontime, admin_secret, database_url, options.targets)
        polling = await compare_polling(ontime, floor, fixture, poll_settings)
        ingest = await compare_ingest(ontime, fixture, database_url, options.batch, ingest_settings)
        progress("stopping servers…")
    return [*polling, ingest]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=__doc__.splitlines()[0])
    option = parser.add_argument
    option("--seconds", type=int, default=10, help="length of each measured run (default 10)")
    option("--poll-connections", type=int, default=32, help="wrk connections when polling (default 32)")
    option("--ingest-connections", type=int, default=4, help="batches in flight when ingesting (default 4)")
    option("--batch", type=int, default=500, help="events per ingest batch (default 500)")
    option("--targets", type=int, default=5000, help="shipments the ingest events go to (default 5000)")
    option("--pool-size", type=int, default=10, help="database pool of each server (default 10)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not installed; `make bench` installs it (apt-get install wrk)")
    try:
        comparisons = asyncio.run(run(options))
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise SystemExit("bench: stopped; servers and database cleaned up") from None
    print(table(comparisons))
    out = OUT_DIR / "core.json"
    out.write_bytes(as_json(comparisons, options))
    progress(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
