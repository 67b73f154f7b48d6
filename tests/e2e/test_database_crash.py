"""PostgreSQL crashes under concurrent writers: a real `ontime serve` on an
embedded PostgreSQL of the test's own, stopped with `pg_ctl stop -m immediate`
and started again a few seconds later. Every answer is a 2xx or a 503 (never a
500, never a hang), nothing acknowledged is lost, /readyz says so while the
database is away, and the service answers again soon after it is back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.shell.database import start_embedded_postgres
from tests.e2e.conftest import Server, StartServers, embedded_postgres_pid

WRITERS = 12
BEFORE_CRASH_SECONDS = 2.0
DOWN_SECONDS = 2.5
AFTER_RESTART_SECONDS = 3.0
# the longest any answer may take: connecting and waiting for a pooled connection are bounded at 5 s each
ANSWER_BOUND_SECONDS = 8.0
RECOVERY_SECONDS = 2.0


class CrashablePostgres:
    """An embedded PostgreSQL in a directory of the test's own (never a shared
    server), which the test crashes and starts again with the package's pg_ctl."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.server = start_embedded_postgres(pgdata, cleanup_mode="delete")
        self.socket_dir = self.server.get_postmaster_info().socket_dir

    def url(self, database: str) -> str:
        return self.server.get_uri(database)

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        # pg_ctl's children inherit its stdout: a pipe would keep the call waiting for the server's exit
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self.server.system_user,
            timeout=30,
        )

    def crash(self) -> None:
        """Kill every server process at once, as a power cut would (crash recovery at the next start)."""
        self._pg_ctl("stop", "-m", "immediate", "-w")

    def start(self) -> None:
        """Start it again as embedded_postgres does (same socket, no TCP), returning once it accepts connections."""
        self._pg_ctl("start", "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"))

    def remove(self) -> None:
        # the package's handle knows only the first postmaster: stop the one running now ourselves
        if embedded_postgres_pid(self.pgdata) is not None:
            with contextlib.suppress(subprocess.SubprocessError):
                self._pg_ctl("stop", "-m", "fast", "-w")
        self.server.cleanup()
        shutil.rmtree(self.pgdata, ignore_errors=True)


@pytest.fixture
def crashable_postgres() -> Iterator[CrashablePostgres]:
    ram_disk = Path("/dev/shm")
    parent = Path(tempfile.mkdtemp(prefix="ontime-crash-", dir=ram_disk if ram_disk.is_dir() else None))
    postgres = CrashablePostgres(parent / "pgdata")
    try:
        yield postgres
    finally:
        postgres.remove()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
async def crash_database_url(crashable_postgres: CrashablePostgres) -> str:
    conn = await asyncpg.connect(crashable_postgres.url("postgres"))
    try:
        await conn.execute('CREATE DATABASE "ontime"')
    finally:
        await conn.close()
    return crashable_postgres.url("ontime")


@dataclass
class Answer:
    what: str
    started: float
    ended: float
    status: int | None  # None: no answer within ANSWER_BOUND_SECONDS, or the connection failed
    detail: str = ""


@dataclass
class Ledger:
    """What the service acknowledged (a 2xx), and every answer it gave."""

    answers: list[Answer] = field(default_factory=list)
    shipments: set[str] = field(default_factory=set)
    events: set[tuple[str, str]] = field(default_factory=set)


async def _call(ledger: Ledger, what: str, request: Awaitable[httpx.Response]) -> httpx.Response | None:
    started = time.monotonic()
    try:
        response = await request
    except httpx.HTTPError as exc:
        ledger.answers.append(Answer(what, started, time.monotonic(), None, repr(exc)))
        return None
    answer = Answer(what, started, time.monotonic(), response.status_code)
    if response.status_code == 503:
        problem = response.json() if response.headers.get("content-type", "").startswith("application/") else {}
        if (
            not response.headers.get("content-type", "").startswith("application/problem+json")
            or not str(problem.get("type", "")).endswith("/database-unavailable")
            or "retry-after" not in response.headers
        ):
            answer.detail = f"a 503 without its problem shape: {response.headers} {response.text}"
    elif not 200 <= response.status_code < 300:
        answer.detail = response.text
    ledger.answers.append(answer)
    return response


async def _write(writer: int, client: httpx.AsyncClient, ledger: Ledger, stop: asyncio.Event) -> None:
    """Create shipments and post events with an event_id to them, as fast as answers come."""
    mine: list[str] = []
    for n in itertools.count():
        if stop.is_set():
            return
        if not mine or n % 4 == 0:
            body = {
                "carrier": "dhl",
                "tracking_number": f"CRASH{writer:02d}X{n:06d}",
                "promised_by": "2031-01-01T00:00:00Z",
            }
            request = client.post("/v1/shipments", json=body, headers={"Idempotency-Key": f"crash-{writer}-{n}"})
            response = await _call(ledger, "create", request)
            if response is not None and 200 <= response.status_code < 300:
                mine.append(response.json()["id"])
                ledger.shipments.add(response.json()["id"])
        else:
            shipment_id, event_id = mine[n % len(mine)], f"crash-{writer}-{n}"
            event = {"status": "in_transit", "occurred_at": datetime.now(UTC).isoformat(), "event_id": event_id}
            response = await _call(ledger, "event", client.post(f"/v1/shipments/{shipment_id}/events", json=event))
            if response is not None and 200 <= response.status_code < 300:
                ledger.events.add((shipment_id, event_id))


async def _watch_readiness(server: Server, seen: list[tuple[float, int | None]], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=ANSWER_BOUND_SECONDS) as client:
        while not stop.is_set():
            try:
                status: int | None = (await client.get("/readyz")).status_code
            except httpx.HTTPError:
                status = None
            seen.append((time.monotonic(), status))
            await asyncio.sleep(0.1)


async def test_a_database_crash_under_concurrent_writers_is_answered_with_503s_and_loses_nothing_acknowledged(
    crashable_postgres: CrashablePostgres, crash_database_url: str, start_servers: StartServers
):
    (server,) = await start_servers(crash_database_url, 1, ONTIME_POOL_MIN_SIZE="2", ONTIME_POOL_MAX_SIZE="10")
    async with server.client() as admin:
        account = (await admin.post("/v1/accounts", json={"name": "Crash Test"})).json()
        key = (await admin.post("/v1/keys", json={"role": "customer", "account_id": account["id"]})).json()

    ledger, stop = Ledger(), asyncio.Event()
    readiness: list[tuple[float, int | None]] = []
    async with server.client(key["secret"], timeout=ANSWER_BOUND_SECONDS) as client:
        tasks = [asyncio.create_task(_write(n, client, ledger, stop)) for n in range(WRITERS)]
        tasks.append(asyncio.create_task(_watch_readiness(server, readiness, stop)))
        try:
            await asyncio.sleep(BEFORE_CRASH_SECONDS)
            await asyncio.to_thread(crashable_postgres.crash)
            down_at = time.monotonic()
            await asyncio.sleep(DOWN_SECONDS)
            restarting_at = time.monotonic()
            await asyncio.to_thread(crashable_postgres.start)
            up_at = time.monotonic()
            await asyncio.sleep(AFTER_RESTART_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    answers = ledger.answers
    statuses = [a.status for a in answers]
    after_restart = [a for a in answers if a.started >= up_at and a.status is not None and 200 <= a.status < 300]
    recovered_in = min((a.ended for a in after_restart), default=float("inf")) - up_at
    print(
        f"\n{len(answers)} requests: {sum(1 for s in statuses if s and 200 <= s < 300)} 2xx, "
        f"{statuses.count(503)} 503, {statuses.count(500)} 500, "
        f"{sum(1 for s in statuses if s is None)} without an answer; "
        f"longest answer {max(a.ended - a.started for a in answers):.2f} s; "
        f"answering 2xx again {recovered_in:.2f} s after PostgreSQL was back; "
        f"{len(ledger.shipments)} shipments and {len(ledger.events)} events acknowledged"
    )

    wrong = [a for a in answers if a.status is None or not (200 <= a.status < 300 or a.status == 503)]
    log = server.stderr
    first_bug = log.find("unhandled error")  # the 500's traceback, if there was one
    shown = log[first_bug : first_bug + 6000] if first_bug >= 0 else log[-5000:]
    assert not wrong, f"{len(wrong)} answers neither 2xx nor 503, e.g. {wrong[:5]}\n{shown}"
    shapeless = [a for a in answers if a.status == 503 and a.detail]
    assert not shapeless, shapeless[:3]
    assert max(a.ended - a.started for a in answers) < ANSWER_BOUND_SECONDS
    assert 503 in statuses, "the crash was never felt: did PostgreSQL stop?"
    assert any(down_at < at < restarting_at and status == 503 for at, status in readiness), readiness
    assert recovered_in <= RECOVERY_SECONDS, f"no 2xx within {RECOVERY_SECONDS} s of PostgreSQL being back"
    assert server.process.poll() is None, server.describe()

    conn = await asyncpg.connect(crash_database_url)
    try:
        stored_shipments = {r["id"] for r in await conn.fetch("select id from shipments")}
        stored_events = {
            (r["shipment_id"], r["event_id"]) for r in await conn.fetch("select shipment_id, event_id from events")
        }
    finally:
        await conn.close()
    assert ledger.shipments - stored_shipments == set(), "acknowledged shipments lost"
    assert ledger.events - stored_events == set(), "acknowledged events lost"
