"""Real `ontime` processes: each its own OS process on a free port, served by
uvicorn, against the test's own database (or an embedded PostgreSQL in a
directory of the test's own). Every wait has a deadline, so a hang fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ADMIN_SECRET = "e2e-admin-secret-0123456789"
READY_SECONDS = 30.0
STOP_SECONDS = 10.0


def ontime_command() -> list[str]:
    """The installed `ontime` script beside this interpreter, as `make run` uses it."""
    script = Path(sys.executable).with_name("ontime")
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ontime_environment(database_url: str | None, **overrides: str | None) -> dict[str, str]:
    """This environment without any ontime setting, then database_url and the overrides
    (an override of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("ONTIME_")}
    env |= {"ONTIME_BOOTSTRAP_ADMIN_KEY": ADMIN_SECRET, "ONTIME_POOL_MIN_SIZE": "1", "ONTIME_POOL_MAX_SIZE": "4"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class OntimeProcess:
    """One `ontime …` command, its stdout and stderr kept in files (a pipe
    nobody reads would block it)."""

    def __init__(self, args: list[str], env: dict[str, str], log_dir: Path, name: str) -> None:
        self.args = args
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [*ontime_command(), *args], env=env, cwd=ROOT, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"`ontime {' '.join(self.args)}` (pid {self.pid}, exit {self.process.poll()})\nstderr:\n{self.stderr}"

    async def wait(self, timeout: float) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout} s: {self.describe()}") from None

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Ask it to stop as Ctrl-C does; kill it if it does not within STOP_SECONDS."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)  # in case a test left it stopped
                self.process.send_signal(sig)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_SECONDS)
        return self.process.returncode


class Server(OntimeProcess):
    def __init__(self, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port), "--log-level", "warning"], env, log_dir, name)

    def client(self, secret: str | None = ADMIN_SECRET, timeout: float = 10.0) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def until_ready(self, timeout: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"exited before it was ready: {self.describe()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"not ready after {timeout} s: {self.describe()}")


StartServers = Callable[..., Awaitable[list[Server]]]
RunOntime = Callable[..., OntimeProcess]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
async def start_servers(log_dir: Path) -> AsyncIterator[StartServers]:
    """`await start_servers(database_url, count, **env_overrides)` launches
    `count` servers at once, then waits until each answers /readyz. All are
    stopped when the test ends."""
    started: list[Server] = []

    async def start(database_url: str | None, count: int = 1, **overrides: str | None) -> list[Server]:
        env = ontime_environment(database_url, **overrides)
        servers = [Server(env, log_dir, f"server{len(started) + n}") for n in range(count)]
        started.extend(servers)
        await asyncio.gather(*(server.until_ready() for server in servers))
        return servers

    yield start
    await asyncio.gather(*(asyncio.to_thread(server.stop) for server in started))


@pytest.fixture
def run_ontime(log_dir: Path) -> Iterator[RunOntime]:
    """`run_ontime(args, database_url, **env_overrides)` launches one `ontime` command; stopped at the end."""
    launched: list[OntimeProcess] = []

    def run(args: list[str], database_url: str | None, **overrides: str | None) -> OntimeProcess:
        command = OntimeProcess(args, ontime_environment(database_url, **overrides), log_dir, f"ontime{len(launched)}")
        launched.append(command)
        return command

    yield run
    for command in launched:
        command.stop()


@pytest.fixture
async def two_servers(database_url: str, start_servers: StartServers) -> list[Server]:
    """A and B: two processes on one migrated database, with the bootstrap admin key."""
    return await start_servers(database_url, 2)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """An ONTIME_DATA_DIR of the test's own; whatever embedded PostgreSQL was
    left running in it is stopped, and the directory removed."""
    ram_disk = Path("/dev/shm")
    directory = Path(tempfile.mkdtemp(prefix="ontime-e2e-", dir=ram_disk if ram_disk.is_dir() else None))
    yield directory
    stop_embedded_postgres(directory / "pgdata")
    shutil.rmtree(directory, ignore_errors=True)


def embedded_postgres_pid(pgdata: Path) -> int | None:
    """The postmaster's pid if it is running in pgdata."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def stop_embedded_postgres(pgdata: Path) -> None:
    pid = embedded_postgres_pid(pgdata)
    if pid is None:
        return
    os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
    deadline = time.monotonic() + STOP_SECONDS
    while embedded_postgres_pid(pgdata) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
