"""Where a batch of carrier events spends its time: `python -m bench.profile_ingest`.

The real app, its lifespan run, on a fresh database (DATABASE_URL's server, as
bench/harness.py makes it), called as an ASGI app in this process: `POST
/v1/events` with --batch events for as many shipments (made in SQL, as
bench.core makes its targets), --batches times, under cProfile. Each
function's own time goes into a bucket by where it lives: decoding the body,
the domain's fold, encoding the changes, the database round trips, the
framework. Prints µs per event, scaled to the unprofiled wall time, and with
PROFILE_TOP=1 the functions that cost most.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
from collections import defaultdict
from typing import Any

from bench import harness
from bench.core import CARRIER, Ingest, bearer, create_targets, first_occurred_at
from bench.profile_poll import DATABASE_MARKS, app_in_process, asgi_call

BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("decoding", ("msgspec.json.decode", "decode_bytes", "_decode_item", "decode_list", "Decoder")),
    ("domain fold", ("domain/",)),
    ("encoding changes", ("api/wire.py", "api/changes/log.py", "msgspec.json.Encoder", "encode")),
    ("database", DATABASE_MARKS),
)


def bucket(filename: str, function: str) -> str:
    where = f"{filename}:{function}"
    for name, marks in BUCKETS:
        if any(mark in where for mark in marks):
            return name
    return "framework and the rest"


async def profile(database_url: str, admin_key: str, batch: int, batches: int) -> dict[str, float]:
    async with app_in_process(database_url, admin_key, {"role": "carrier", "carrier": CARRIER}) as (
        app,
        _,
        account_id,
        key,
    ):
        targets = await create_targets(database_url, account_id, batch)
        ingest = Ingest(targets, batch, first_occurred_at())
        headers = bearer(key) | {"content-type": "application/json"}

        async def post(tag: str, n: int) -> None:
            status, _, answer = await asgi_call(app, "POST", "/v1/events", headers, ingest.body(tag, n))
            assert status == 200, (status, answer[:300])

        for n in range(3):  # warm: caches filled, code paths taken once
            await post("warm", n)
        started = time.perf_counter()
        for n in range(batches):
            await post("run", n)
        wall = (time.perf_counter() - started) / (batches * batch) * 1e6
        profiler = cProfile.Profile()
        profiler.enable()
        for n in range(batches):
            await post("check", n)
        profiler.disable()
    if os.environ.get("PROFILE_DUMP"):
        profiler.dump_stats(os.environ["PROFILE_DUMP"])
    events = batches * batch
    totals: dict[str, float] = defaultdict(float)
    stats: Any = pstats.Stats(profiler).stats
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in stats.items():
        totals[bucket(filename, function)] += own
    if os.environ.get("PROFILE_TOP"):
        top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:45]
        for (filename, line, function), (_cc, nc, own, _cum, _callers) in top:
            print(f"{own / events * 1e6:7.2f} {nc:7d} {bucket(filename, function):22s} {filename}:{line}:{function}")
    per = {name: seconds / events * 1e6 for name, seconds in totals.items()}
    profiled = sum(per.values())
    return {name: value / profiled * wall for name, value in per.items()} | {"total (unprofiled wall)": wall}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_ingest")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args(argv)
    os.environ.setdefault("ONTIME_DATA_DIR", str(harness.OUT_DIR / "data"))
    admin_key = harness.admin_key()
    with harness.fresh_database("profile") as database_url:
        figures = asyncio.run(profile(database_url, admin_key, args.batch, args.batches))
    print("| part | µs/event |\n| --- | --- |")
    for name, value in figures.items():
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main()
