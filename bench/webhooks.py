"""Webhook deliveries: `python -m bench.webhooks [--endpoints N] [--changes N] [--rate N] [--seconds N]`.

One `ontime serve` process (its delivery worker, ONTIME_WEBHOOK_ALLOW_PRIVATE for
a receiver on loopback) and a receiver process (bench/webhook_receiver.py: every
POST answered 200 at once, its arrival noted). --endpoints accounts, one
endpoint each. Changes are appended in SQL (`append_changes`, as every writer
does: the lock, the NOTIFY, the insert), so what is measured is the worker.

1. Throughput: --changes changes spread over the accounts, appended at once;
   deliveries a second from the first commit to the last arrival. Floor, same
   run: this process POSTs the same bodies to the same receiver with httpx and
   as many at once as the worker may (ONTIME_WEBHOOK_CONCURRENCY, 32).
2. Lag: --rate changes a second for --seconds, each in its own transaction,
   over the accounts in turn; per delivery, arrival - commit (both this
   machine's clock), p50 and p99. Floor, same run: this process POSTs at the
   same rate, arrival - send.

It asserts nothing; the figures also go to bench/out/webhooks.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncpg
import httpx
import msgspec

from bench import harness
from bench.harness import Benchmark, Command, Result, Row, figure, say

RECEIVER = Command("receiver", ("bench.webhook_receiver",), "/stats", 200)
CONCURRENCY = 32
APPEND = "select append_changes($1::text[], $2::text[], $3::text[], $4::bytea[])"


def body(n: int) -> bytes:
    """A change of the size a real `event` change has (about 1 kB)."""
    return msgspec.json.encode(
        {
            "type": "event",
            "shipment": {
                "id": f"shp_bench_{n:08d}",
                "carrier": "dhl",
                "tracking_number": f"JD{n:016d}",
                "status": "in_transit",
                "late": False,
                "at_risk": False,
                "promised_by": "2026-12-10T18:00:00Z",
                "last_location": {"city": "Zaragoza", "country": "ES"},
                "metadata": {"warehouse": "ZAZ-2", "note": "x" * 600},
            },
            "event": {"status": "in_transit", "occurred_at": "2026-12-04T09:00:00Z", "description": "In transit"},
        }
    )


async def received(http: httpx.AsyncClient, receiver: str) -> list[tuple[str, int, float]]:
    answer = await http.get(f"{receiver}/stats", timeout=30)
    return [tuple(r) for r in answer.json()]  # type: ignore[misc]


async def wait_for(http: httpx.AsyncClient, receiver: str, count: int, give_up: float = 120) -> list:
    deadline = time.monotonic() + give_up
    while True:
        got = await received(http, receiver)
        if len(got) >= count or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)


async def floor_posts(receiver: str, bodies: list[bytes], at_rate: float | None = None) -> list[float]:
    """POST each body; at `at_rate` a second (the send times), or all at once with CONCURRENCY in flight."""
    sent: list[float] = []
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=10) as http:

        async def post(n: int, payload: bytes) -> None:
            async with gate:
                sent.append(time.time())
                await http.post(f"{receiver}/floor/{n % 100}", content=payload, headers={"Ontime-Seq": str(n)})

        tasks, start = [], time.monotonic()
        for n, payload in enumerate(bodies):
            if at_rate:
                await asyncio.sleep(max(0.0, start + n / at_rate - time.monotonic()))
            tasks.append(asyncio.create_task(post(n, payload)))
        await asyncio.gather(*tasks)
    return sent


async def measure_on(url: str, admin: str, ontime: harness.Server, receiver: harness.Server, options) -> Result:
    pool = await asyncpg.create_pool(url, min_size=2, max_size=8)
    accounts = [f"acc_bench_{i:03d}" for i in range(options.endpoints)]
    await pool.execute("insert into accounts (id, name) select unnest($1::text[]), 'bench'", accounts)
    async with httpx.AsyncClient(base_url=ontime.url, timeout=30) as api, httpx.AsyncClient() as http:
        for i, account in enumerate(accounts):
            await harness.call(
                api, "POST", "/v1/webhooks", {"url": f"{receiver.url}/hook/{i}", "account_id": account}, admin
            )
        say(f"{options.endpoints} endpoints made; (1) {options.changes:,} changes at once")
        payloads = [body(n) for n in range(options.changes)]
        owners = [accounts[n % len(accounts)] for n in range(options.changes)]
        start = time.time()
        async with pool.acquire() as conn:
            step = 500
            for lo in range(0, options.changes, step):
                chunk = range(lo, min(options.changes, lo + step))
                await conn.execute(
                    APPEND,
                    [owners[n] for n in chunk],
                    [None] * len(chunk),
                    ["event"] * len(chunk),
                    [payloads[n] for n in chunk],
                )
        got = await wait_for(http, receiver.url, options.changes)
        delivered = [r for r in got if r[0].startswith("/hook/")]
        took = max(r[2] for r in delivered) - start
        throughput = len(delivered) / took
        say(f"    ontime: {len(delivered):,} delivered in {took:.2f} s: {throughput:,.0f}/s")
        before = len(got)
        floor_start = time.time()
        await floor_posts(receiver.url, payloads)
        floor_got = (await wait_for(http, receiver.url, before + options.changes))[before:]
        floor_took = max(r[2] for r in floor_got) - floor_start
        floor_rate = len(floor_got) / floor_took
        say(f"    floor: {len(floor_got):,} posted in {floor_took:.2f} s: {floor_rate:,.0f}/s")

        total = options.rate * options.seconds
        say(f"(2) {options.rate} changes a second for {options.seconds} s ({total:,})")
        committed: dict[tuple[str, int], float] = {}
        async with pool.acquire() as conn:
            begin = time.monotonic()
            for n in range(total):
                await asyncio.sleep(max(0.0, begin + n / options.rate - time.monotonic()))
                i = n % len(accounts)
                seq = await conn.fetchval(APPEND, [accounts[i]], [None], ["event"], [payloads[n % len(payloads)]])
                committed[(f"/hook/{i}", seq)] = time.time()
        seen = len(got) + len(floor_got)
        lag_got = (await wait_for(http, receiver.url, seen + total))[seen:]
        lags = [(arrived - committed[(path, seq)]) * 1000 for path, seq, arrived in lag_got if (path, seq) in committed]
        spread = harness.percentiles(lags)
        say(f"    ontime lag p50 {spread['p50']:.1f} ms, p99 {spread['p99']:.1f} ms over {len(lags):,}")
        seen += len(lag_got)
        sent = await floor_posts(receiver.url, payloads[:1] * total, at_rate=options.rate)
        floor_lag_got = (await wait_for(http, receiver.url, seen + total))[seen:]
        by_n = {int(seq): arrived for _, seq, arrived in floor_lag_got}
        floor_lags = [(by_n[n] - sent_at) * 1000 for n, sent_at in enumerate(sorted(sent)) if n in by_n]
        floor_spread = harness.percentiles(floor_lags)
        say(f"    floor lag p50 {floor_spread['p50']:.1f} ms, p99 {floor_spread['p99']:.1f} ms")
    await pool.close()
    rows = [
        Row(
            f"(1) deliveries a second, {options.endpoints} endpoints",
            "/s",
            figure(throughput, count=len(delivered)),
            figure(floor_rate, count=len(floor_got)),
        ),
        Row(
            f"(2) commit to delivery at {options.rate}/s, p50", "ms", figure(spread["p50"]), figure(floor_spread["p50"])
        ),
        Row(
            f"(2) commit to delivery at {options.rate}/s, p99", "ms", figure(spread["p99"]), figure(floor_spread["p99"])
        ),
    ]
    notes = [
        f"{options.endpoints} accounts with one endpoint each; one ontime process (32 endpoints at once); "
        f"(1) {options.changes:,} changes appended at once; (2) {total:,} changes, {len(lags):,} delivered, each its "
        "own transaction; floors: this process POSTing the same bodies to the same receiver with httpx "
        f"({CONCURRENCY} in flight), arrival - send"
    ]
    return Result(rows, notes, {"lags_ms": lags, "floor_lags_ms": floor_lags})


def measure(options: argparse.Namespace) -> Result:
    admin = harness.admin_key()
    with harness.fresh_database("webhooks") as url:
        env = harness.server_env(url, admin) | {"ONTIME_WEBHOOK_ALLOW_PRIVATE": "true"}
        with harness.serving(env, harness.ontime(), RECEIVER) as (ontime, receiver):
            return asyncio.run(measure_on(url, admin, ontime, receiver, options))


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoints", type=int, default=100, help="accounts, one endpoint each")
    parser.add_argument("--changes", type=int, default=10_000, help="changes appended at once in (1)")
    parser.add_argument("--rate", type=int, default=500, help="changes a second in (2)")
    parser.add_argument("--seconds", type=int, default=10, help="how long (2) appends")


BENCHMARK = Benchmark(
    name="webhooks",
    doc=__doc__ or "",
    options=options,
    quick={"endpoints": 10, "changes": 500, "rate": 100, "seconds": 2},
    measure=measure,
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
