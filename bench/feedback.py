"""Ratings through feedback links: `python -m bench.feedback [--shipments N] [--ratings N]`.

--shipments delivered this month (made in SQL, as bench.lateness makes its month)
in 200 accounts; half the accounts ask for a complaint case on a low rating.

- ontime: --ratings ratings, one after another, through the whole use case in
  this process (`api.feedback.service.give` on a pool of its own: the link's
  signature checked, the shipment read, the rating written, its change
  appended, for ratings of 1 or 2 the account's setting read and a case opened,
  the commit). Ratings are 1 to 5 in turn.
- floor, in the same run on the same tables: the bare write, `insert into
  feedback … on conflict do nothing` of as many other shipments, one per
  statement, on the same pool.

Rows: ratings a second and p99 latency, each as a ratio to the floor. It asserts
nothing; the figures also go to bench/out/feedback.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from api import wire
from api.feedback import service, store
from api.shell.database import create_pool
from bench import harness, lateness_data
from bench.harness import Benchmark, Result, Row, figure, say
from domain.feedback import GiveFeedback

FLOOR = """
insert into feedback (shipment_id, account_id, rating, comment, delivered_at, on_time, received_at)
select id, account_id, $2, null, delivered_at, not late, now() from shipments where id = $1
on conflict (shipment_id) do nothing
"""


async def timings(work: Callable[[int], Awaitable[object]], count: int) -> tuple[float, list[float]]:
    each: list[float] = []
    started = time.perf_counter()
    for n in range(count):
        t = time.perf_counter()
        await work(n)
        each.append((time.perf_counter() - t) * 1000)
    return time.perf_counter() - started, each


async def measure_on(url: str, options: argparse.Namespace) -> Result:
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        await pool.execute(
            "insert into case_auto_open (account_id, trigger, type, priority) "
            "select id, 'low_rating', 'complaint', 'high' from accounts where right(id, 1) in ('0','2','4','6','8')"
        )
        delivered = [
            r["id"] for r in await pool.fetch("select id from shipments where status = 'delivered' order by id")
        ]
        if len(delivered) < 2 * options.ratings:
            raise SystemExit(f"only {len(delivered)} delivered shipments; ask for more --shipments")
        rated, bare = delivered[: options.ratings], delivered[options.ratings : 2 * options.ratings]
        links = wire.PublicLinks(keys=await store.link_keys(pool), base_url="http://bench")
        now = datetime.now(UTC)
        delivered_at = {
            r["id"]: r["delivered_at"]
            for r in await pool.fetch("select id, delivered_at from shipments where id = any($1)", rated)
        }
        tokens = [links.keys.sign(i, delivered_at[i]) for i in rated]

        async def floor_one(n: int) -> None:
            await pool.execute(FLOOR, bare[n], 1 + n % 5)

        async def give_one(n: int) -> None:
            await service.give(pool, links, tokens[n], GiveFeedback(rating=1 + n % 5, comment="bench"), now)

        say(f"floor: {options.ratings} bare inserts")
        floor_s, floor_ms = await timings(floor_one, options.ratings)
        say(f"ontime: {options.ratings} ratings through api.feedback.service.give")
        ontime_s, ontime_ms = await timings(give_one, options.ratings)
        cases = await pool.fetchval("select count(*) from cases where opened_by = 'low_rating'")
    finally:
        await pool.close()
    spread = harness.percentiles(ontime_ms)
    floor_spread = harness.percentiles(floor_ms)
    rows = [
        Row(
            "ratings a second, one at a time",
            "/s",
            figure(options.ratings / ontime_s, p50_ms=spread["p50"], p99_ms=spread["p99"]),
            figure(options.ratings / floor_s, p50_ms=floor_spread["p50"], p99_ms=floor_spread["p99"]),
        ),
        Row("p99 latency of one rating", "ms", figure(spread["p99"]), figure(floor_spread["p99"])),
    ]
    notes = [
        f"{options.shipments:,} shipments due this month, {len(delivered):,} delivered; {options.ratings} ratings "
        f"({cases} complaint cases opened by low ratings); floor: a bare insert into feedback per statement"
    ]
    return Result(rows, notes, {"ontime_ms": ontime_ms, "floor_ms": floor_ms})


def measure(options: argparse.Namespace) -> Result:
    month = datetime.now(UTC).date().replace(day=1)
    with harness.fresh_database("feedback", lateness_data.INSERT_ACCOUNTS) as url:

        async def fill() -> None:
            conn = await asyncpg.connect(url)
            try:
                await lateness_data.insert_month(conn, month, options.shipments)
                await conn.execute("vacuum (analyze) shipments")
            finally:
                await conn.close()

        say(f"making {options.shipments:,} shipments in SQL")
        asyncio.run(fill())
        return asyncio.run(measure_on(url, options))


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shipments", type=int, default=100_000, help="shipments due this month")
    parser.add_argument("--ratings", type=int, default=2_000, help="ratings given (and bare inserts for the floor)")


BENCHMARK = Benchmark(
    name="feedback",
    doc=__doc__ or "",
    options=options,
    quick={"shipments": 5_000, "ratings": 200},
    measure=measure,
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
