"""wrk, a load generator in a process of its own, driven by a Lua script from bench/lua."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgspec

LUA_DIR = Path(__file__).resolve().parent / "lua"
MARKER = "BENCH_RESULT "


@dataclass(frozen=True)
class Load:
    """What wrk saw: responses, how long it ran, latencies, responses with a
    status of 400 and up, and socket errors (connect, read, write, timeout)."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int
    output: str

    @property
    def answered(self) -> int:
        """Responses with a 2xx or 3xx status."""
        return self.requests - self.bad_status

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds


class _Errors(msgspec.Struct):
    connect: int
    read: int
    write: int
    status: int
    timeout: int


class _Summary(msgspec.Struct):
    requests: int
    duration_us: int
    p50_us: float
    p99_us: float
    errors: _Errors


async def run_wrk(
    url: str,
    script: str,
    script_args: list[str],
    *,
    seconds: int,
    connections: int,
    timeout_seconds: int = 10,
) -> Load:
    """Run bench/lua/<script>.lua against url, one wrk thread, for `seconds`."""
    lua = (LUA_DIR / f"{script}.lua").read_text() + (LUA_DIR / "report.lua").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix=f"bench-{script}-") as file:
        file.write(lua)
        file.flush()
        output = await _run(
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_seconds}s",
            "--latency", "-s", file.name, url, "--", *script_args,
        )  # fmt: skip
    return _load(output)


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await process.communicate()
    except BaseException:  # cancelled or interrupted: wrk must not outlive the run
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{text}")
    return text


def _load(output: str) -> Load:
    line = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    summary = msgspec.json.decode(line.removeprefix(MARKER), type=_Summary)
    e = summary.errors
    return Load(
        requests=summary.requests,
        seconds=summary.duration_us / 1e6,
        p50_ms=summary.p50_us / 1000,
        p99_ms=summary.p99_us / 1000,
        bad_status=e.status,
        socket_errors=e.connect + e.read + e.write + e.timeout,
        output=output,
    )
