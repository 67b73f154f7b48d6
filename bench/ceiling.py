"""The change log's ceiling: `python -m bench.ceiling [--seconds N] [--writers N]`.

Every write that the live feed, the change feed and webhooks see appends to the
change log through `append_changes` (migrations/0004), which takes one
transaction-scoped advisory lock and holds it through the commit, so that seq
numbers become visible in order. That lock admits one committing writer at a
time: it is the write ceiling of one PostgreSQL, whatever the number of
`ontime serve` processes.

Measured here, for 1 and 2 writer processes of --writers connections each, for
--seconds: committed write transactions per second, each one transaction of one
`append_changes` call (one change of a 200-byte body), and the commit's latency
p50/p99 as the writer sees it. Floor, in the same run on the same server: the same
transactions inserting the same row into a table of the same shape with its own
sequence, without the lock and the NOTIFY; PostgreSQL then commits them in groups
(one WAL flush for several commits), which the lock rules out.

The server's `synchronous_commit` and `fsync` are printed with the figures: with
fsync off (the embedded test server's default is on) the ceiling says little.
It asserts nothing; the figures also go to bench/out/ceiling.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from multiprocessing.connection import Connection

import asyncpg

from bench import harness
from bench.harness import Benchmark, Result, Row, figure, percentiles, say

BODY = b"{" + b'"x":"' + b"o" * 190 + b'"}'
OURS = "select append_changes(array['acc_ceiling'], array['shp_ceiling'], array['event'], array[$1::bytea])"
FLOOR = "insert into ceiling_floor (seq, account_id, shipment_id, kind, body) values (nextval('ceiling_floor_seq'), 'acc_ceiling', 'shp_ceiling', 'event', $1)"
# the floor's insert plus the append's NOTIFY, without the advisory lock: what the
# NOTIFY alone costs (PostgreSQL serialises the commits of notifying transactions)
NOTIFY_ONLY = f"with n as (select pg_notify('ontime_ceiling', '')) {FLOOR} "
SEED = (
    "create sequence ceiling_floor_seq",
    "create table ceiling_floor (seq bigint primary key, account_id text not null, shipment_id text,"
    " kind text not null, body bytea not null, created_at timestamptz not null default now())",
    "create index on ceiling_floor (account_id, seq)",
)


async def _write(url: str, statement: str, writers: int, seconds: float) -> list[float]:
    """--writers connections appending for `seconds`; the latency of each commit, in ms."""
    conns = [await asyncpg.connect(url) for _ in range(writers)]
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def loop(conn: asyncpg.Connection) -> None:
        while time.monotonic() < stop:
            start = time.perf_counter()
            async with conn.transaction():
                await conn.execute(statement, BODY)
            latencies.append((time.perf_counter() - start) * 1000)

    try:
        await asyncio.gather(*(loop(c) for c in conns))
    finally:
        for conn in conns:
            await conn.close()
    return latencies


def _writer(url: str, statement: str, writers: int, seconds: float, pipe: Connection) -> None:
    pipe.send(asyncio.run(_write(url, statement, writers, seconds)))


def _run(url: str, statement: str, processes: int, writers: int, seconds: float) -> tuple[float, list[float]]:
    """Committed transactions a second over `processes` processes, and every commit's latency."""
    with contextlib.ExitStack() as stack:
        pipes = [
            stack.enter_context(harness.spawned(_writer, url, statement, writers, seconds, join_seconds=60))
            for _ in range(processes)
        ]
        batches = [pipe.recv() for pipe in pipes]
    latencies = [ms for batch in batches for ms in batch]
    return len(latencies) / seconds, latencies


def measure(options: argparse.Namespace) -> Result:
    details: dict = {"writers_per_process": options.writers, "seconds": options.seconds}
    rows = []
    with harness.fresh_database("ceiling", *SEED) as url:
        settings = asyncio.run(
            harness.fetch(url, "select name, setting from pg_settings where name in ('synchronous_commit', 'fsync')")
        )
        details["server"] = {r["name"]: r["setting"] for r in settings}
        for processes in (1, 2):
            say(f"{processes} process(es) x {options.writers} connections, {options.seconds:.0f} s each side")
            floor_rate, floor_ms = _run(url, FLOOR, processes, options.writers, options.seconds)
            ours_rate, ours_ms = _run(url, OURS, processes, options.writers, options.seconds)
            notify_rate, notify_ms = _run(url, NOTIFY_ONLY, processes, options.writers, options.seconds)
            details[f"{processes}_process"] = {
                "ontime": {"tx_per_s": ours_rate, **percentiles(ours_ms)},
                "notify_only": {"tx_per_s": notify_rate, **percentiles(notify_ms)},
                "floor": {"tx_per_s": floor_rate, **percentiles(floor_ms)},
            }
            shape = f"{processes} process(es) x {options.writers} connections"
            floor = figure(floor_rate, **_spread(floor_ms))
            rows.append(Row(f"committed appends, {shape}", "tx/s", figure(ours_rate, **_spread(ours_ms)), floor))
            rows.append(
                Row(f"  of which NOTIFY alone, {shape}", "tx/s", figure(notify_rate, **_spread(notify_ms)), floor)
            )
    server = ", ".join(f"{k} {v}" for k, v in sorted(details["server"].items()))
    notes = [
        "",
        f"server: {server}. ontime: append_changes (lock, NOTIFY, insert) a transaction; floor: the same row into a"
        " table of the same shape without the lock, so PostgreSQL may flush several commits at once; 'NOTIFY alone':"
        " the floor's insert with a pg_notify and no advisory lock.",
    ]
    return Result(rows, notes, details)


def _spread(latencies: list[float]) -> dict[str, float | None]:
    p = percentiles(latencies)
    return {"p50_ms": p["p50"], "p99_ms": p["p99"]}


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each side writes")
    parser.add_argument("--writers", type=int, default=16, help="connections per writer process")


BENCHMARK = Benchmark("ceiling", __doc__, options, {"seconds": 2.0, "writers": 4}, measure)

if __name__ == "__main__":
    harness.main(BENCHMARK)
