"""What every benchmark shares: a fresh migrated database, ontime and floor processes
on free ports, progress lines, CPU and memory of a process, percentiles, figures
set against their floor, one printed table and one JSON format, `--runs`, `--json`
and `--quick`.

A benchmark is a `Benchmark`: its options, its `--quick` settings and a
`measure(options) -> Result` that runs once; `main` parses the options, runs it
`--runs` times (each on a fresh database) and reports the runs together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec

from api.shell.database import start_embedded_postgres
from api.shell.migrate import apply_migrations
from api.shell.settings import MIGRATIONS_DIR

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
HOST = "127.0.0.1"
SPAWN = multiprocessing.get_context("spawn")
T = TypeVar("T")


def say(line: str) -> None:
    """A progress line, on stderr; the figures go to stdout."""
    print(line, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- the database --------------------------------------------------------------


async def execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(label: str, *seed: str) -> Iterator[str]:
    """A migrated database of its own (on DATABASE_URL's server, or an embedded
    PostgreSQL in a temporary directory), with `seed` statements run in it;
    dropped afterwards."""
    # the embedded server's INFO lines (every pg_ctl call) would drown the progress lines
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
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


# -- server processes ----------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """`python -m <argv> --host H --port P`, ready once GET `ready_path` answers `ready_status`."""

    name: str
    argv: tuple[str, ...]
    ready_path: str = "/readyz"
    ready_status: int = 200


def ontime(name: str = "ontime") -> Command:
    return Command(name, ("api.cli", "serve", "--log-level", "warning"))


# bench/floor_app.py: a bare Litestar handler, one primary-key fetch
FLOOR_APP = Command("floor", ("bench.floor_app",), "/v1/shipments/shp_none", 404)


@dataclass(frozen=True)
class Server:
    name: str
    url: str  # http://…
    pid: int
    log: Path | None = None

    @property
    def live_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/live"


def server_env(database_url: str, admin_key: str, pool_size: int | None = None) -> dict[str, str]:
    """The environment of every server process of a run: the same database and pool size."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ONTIME_BOOTSTRAP_ADMIN_KEY": admin_key,
        "ONTIME_DATA_DIR": str(OUT_DIR / "data"),
    }
    if pool_size is not None:
        env |= {"ONTIME_POOL_MIN_SIZE": str(pool_size), "ONTIME_POOL_MAX_SIZE": str(pool_size)}
    return env


def admin_key() -> str:
    return f"bench-admin-{secrets.token_hex(16)}"


@contextlib.contextmanager
def serving(env: dict[str, str], *commands: Command) -> Iterator[list[Server]]:
    """Start every command (output in bench/out/<name>.log), wait until all are
    ready, and stop them all on the way out, whatever happened."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started: list[tuple[subprocess.Popen, Server]] = []
    try:
        for command in commands:
            port, log = free_port(), OUT_DIR / f"{command.name}.log"
            with log.open("wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", *command.argv, "--host", HOST, "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    # our own to stop: a Ctrl-C reaches this process, which stops it in order
                    start_new_session=True,
                )
            started.append((process, Server(command.name, f"http://{HOST}:{port}", process.pid, log)))
        for (process, server), command in zip(started, commands, strict=True):
            _wait_ready(process, server, command)
        yield [server for _, server in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen, server: Server, command: Command, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-3000:] if server.log else ""
            raise SystemExit(f"bench: {server.name} exited with {process.returncode}; its log ({server.log}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + command.ready_path, timeout=1).status_code == command.ready_status:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {server.name} was not ready within {timeout:.0f} s; see {server.log}")
        time.sleep(0.2)


async def call(http: httpx.AsyncClient, method: str, path: str, body: object, key: str | None = None) -> Any:
    """One request to ontime for a run's setup; an error status ends the run."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    response = await http.request(method, path, json=body, headers=headers)
    if response.is_error:
        raise RuntimeError(f"{method} {path}: {response.status_code}: {response.text[:500]}")
    return response.json()


@contextlib.contextmanager
def spawned(target: Callable[..., None], *args: object, join_seconds: float = 10) -> Iterator[Connection]:
    """`target(*args, pipe)` in a fresh process (never on our event loop); yields
    our end of the pipe; the process is joined, or killed, on the way out."""
    parent, child = SPAWN.Pipe()
    process = SPAWN.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    try:
        yield parent
    finally:
        process.join(join_seconds)
        if process.is_alive():
            process.kill()


# -- what a process costs ------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()  # utime, stime: fields 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_wait_seconds(pid: int) -> float:
    """Time the process's threads were ready to run but waited for a CPU: how busy the machine was."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            total += int(Path(task, "schedstat").read_text().split()[1])
    return total / 1e9


def rss_kib(pid: int) -> int:
    """Resident memory of a process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Usage:
    """CPU the server processes used over a stretch of wall time (filled in when it ends)."""

    elapsed: float = 0.0
    cpu: float = 0.0  # seconds, all the processes together
    wait: float = 0.0  # seconds ready to run but waiting for a CPU

    def us_per(self, count: int) -> float | None:
        """Server CPU time per request (event, receipt…), in µs."""
        return self.cpu * 1e6 / count if count else None

    @property
    def busy(self) -> float:
        return self.cpu / self.elapsed if self.elapsed else 0.0


@contextlib.contextmanager
def usage(*pids: int) -> Iterator[Usage]:
    used = Usage()
    started = time.monotonic()
    cpu, wait = sum(map(cpu_seconds, pids)), sum(map(cpu_wait_seconds, pids))
    yield used
    used.elapsed = time.monotonic() - started
    used.cpu = sum(map(cpu_seconds, pids)) - cpu
    used.wait = sum(map(cpu_wait_seconds, pids)) - wait


async def timed(work: Awaitable[T]) -> tuple[T, float, float]:
    """Its result, and the wall and this process's CPU seconds it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work
    return result, time.perf_counter() - wall, time.process_time() - cpu


median = statistics.median


def percentiles(values: list[float], scale: float = 1.0) -> dict[str, float | None]:
    """p50, p99 and max (nearest rank), times `scale`; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p99": None, "max": None}
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * scale  # noqa: E731
    return {"p50": at(0.50), "p99": at(0.99), "max": ordered[-1] * scale}


def number(value: float | None) -> str:
    """About three significant figures, thousands separated; "-" for nothing."""
    if value is None or value != value:
        return "-"
    return (
        f"{value:,.0f}"
        if abs(value) >= 100 or float(value).is_integer()
        else f"{value:.1f}"
        if abs(value) >= 10
        else f"{value:.2f}"
    )


# -- figures against their floor -----------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One side of a row: the headline value (in the row's unit), a line of what
    else was measured with it, and all of it for the JSON."""

    value: float | None
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def figure(
    value: float | None,
    *,
    per: str = "request",
    count: int = 0,
    server: Usage | None = None,
    p50_ms: float | None = None,
    p99_ms: float | None = None,
    errors: int = 0,
    detail: str = "",
    **data: Any,
) -> Figure:
    """A Figure with the usual details: latency percentiles, the server's CPU time
    per `per` (over `count` of them), errors."""
    latency = [f"{name} {number(ms)}" for name, ms in (("p50", p50_ms), ("p99", p99_ms)) if ms is not None]
    parts = [" ".join(latency) + " ms"] if latency else []
    cpu_us = server.us_per(count) if server else None
    if cpu_us is not None:
        parts.append(f"server cpu {cpu_us:,.0f} µs/{per}")
    if detail:
        parts.append(detail)
    if errors:
        parts.append(f"({errors} errors)")
    data = {"p50_ms": p50_ms, "p99_ms": p99_ms, "errors": errors, "server_cpu_us": cpu_us, **data}
    return Figure(value, "; ".join(parts), {k: v for k, v in data.items() if v is not None})


@dataclass(frozen=True)
class Aim:
    min_ratio: float | None = None  # ontime / floor at least
    min_value: float | None = None
    max_value: float | None = None

    def text(self, unit: str) -> str:
        parts = [f">= {self.min_ratio:.2f}x floor"] if self.min_ratio is not None else []
        parts += [f">= {number(self.min_value)} {unit}"] if self.min_value is not None else []
        parts += [f"< {number(self.max_value)} {unit}"] if self.max_value is not None else []
        return " and ".join(parts)


@dataclass(frozen=True)
class Row:
    """A scenario's figure for ontime beside its floor's, measured in the same run."""

    scenario: str
    unit: str
    ontime: Figure
    floor: Figure | None = None
    aim: Aim | None = None
    notes: tuple[str, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.floor is None or not self.floor.value or self.ontime.value is None:
            return None
        return self.ontime.value / self.floor.value

    @property
    def met(self) -> bool | None:
        if self.aim is None:
            return None
        value, ratio, aim = self.ontime.value, self.ratio, self.aim
        return (
            value is not None
            and (aim.min_ratio is None or (ratio is not None and ratio >= aim.min_ratio))
            and (aim.min_value is None or value >= aim.min_value)
            and (aim.max_value is None or value < aim.max_value)
        )

    def as_json(self) -> dict[str, Any]:
        def side(f: Figure | None) -> dict[str, Any] | None:
            return None if f is None else {"value": f.value, **f.data}

        ratio = self.ratio
        return {
            "scenario": self.scenario,
            "unit": self.unit,
            "ontime": side(self.ontime),
            "floor": side(self.floor),
            "ratio": None if ratio is None else round(ratio, 3),
            "aim": self.aim.text(self.unit) if self.aim else None,
            "met": self.met,
            "notes": list(self.notes),
        }


@dataclass
class Result:
    """One run of a benchmark: its rows, lines to print after the table, and the
    raw figures (kept whole in the JSON)."""

    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def table(runs: list[Result]) -> str:
    """Every row of every run (a row's runs one under the other), what else was
    measured with each under it, then the notes."""
    header = ["scenario", "run", "ontime", "floor", "ontime/floor", "aim", "met"]
    lines: list[list[str] | str] = []
    for i in range(len(runs[0].rows)):
        for n, result in enumerate(runs, 1):
            r = result.rows[i]
            cells = [
                r.scenario if n == 1 else "",
                str(n),
                f"{number(r.ontime.value)} {r.unit}",
                f"{number(r.floor.value)} {r.unit}" if r.floor else "-",
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                r.aim.text(r.unit) if r.aim else "-",
                {True: "yes", False: "no", None: "-"}[r.met],
            ]
            lines.append(cells)
            lines += [
                f"    {side + ':':<8}{f.detail}"
                for side, f in (("ontime", r.ontime), ("floor", r.floor))
                if f and f.detail
            ]
    if len(runs) == 1:
        header.pop(1)
        lines = [line if isinstance(line, str) else line[:1] + line[2:] for line in lines]
    cells = [header, *(line for line in lines if not isinstance(line, str))]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]

    def join(line: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()

    text = [join(header), join(["-" * w for w in widths])]
    text += [line if isinstance(line, str) else join(line) for line in lines]
    for n, result in enumerate(runs, 1):
        run = f"run {n}: " if len(runs) > 1 else ""
        text += [f"{run}note ({r.scenario}): {note}" for r in result.rows for note in r.notes]
        text += [f"{run}{note}" if note else "" for note in result.notes]
    return "\n".join(text)


def as_json(name: str, runs: list[Result], options: argparse.Namespace) -> bytes:
    report = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {k: v for k, v in vars(options).items() if k != "json"},
        "runs": [{"rows": [r.as_json() for r in result.rows], "details": result.details} for result in runs],
    }
    return msgspec.json.format(msgspec.json.encode(report, enc_hook=str))


# -- the run -------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    name: str  # bench.<name>; bench/out/<name>.json
    doc: str
    options: Callable[[argparse.ArgumentParser], None]
    quick: dict[str, Any]  # the option values --quick sets (explicit options win)
    measure: Callable[[argparse.Namespace], Result]
    needs: tuple[str, ...] = ()  # programs that must be installed, e.g. wrk


def parse_args(benchmark: Benchmark, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{benchmark.name}",
        description=benchmark.doc.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=1, help="run it this many times, each on a fresh database")
    parser.add_argument(
        "--json", type=Path, default=OUT_DIR / f"{benchmark.name}.json", help="where the figures are written"
    )
    parser.add_argument("--quick", action="store_true", help=f"a smoke run, a few seconds: {benchmark.quick}")
    benchmark.options(parser)
    options = parser.parse_args(argv)
    if options.quick:
        parser.set_defaults(**benchmark.quick)
        options = parser.parse_args(argv)
    return options


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(benchmark: Benchmark, argv: list[str] | None = None) -> None:
    """Parse the options, run the benchmark --runs times, print the table, write the JSON."""
    options = parse_args(benchmark, argv)
    for program in benchmark.needs:
        if shutil.which(program) is None:
            raise SystemExit(f"bench: {program} is not installed; `make bench` installs it (apt-get install {program})")
    # a SIGTERM stops the run as a Ctrl-C does: servers and database go away
    signal.signal(signal.SIGTERM, _interrupt)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for n in range(options.runs):
            if options.runs > 1:
                say(f"== run {n + 1} of {options.runs}")
            runs.append(benchmark.measure(options))
    except KeyboardInterrupt:
        raise SystemExit("bench: stopped; servers and database cleaned up") from None
    print()
    print(table(runs))
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_bytes(as_json(benchmark.name, runs, options))
    say(f"wrote {options.json}")
