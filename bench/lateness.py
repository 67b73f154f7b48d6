"""Lateness at scale: `python -m bench.lateness [--rows N] [--due N]`.

Three measures, each beside a floor measured in the same run:

1. The deadline sweep, called in this process (`api.lateness.sweep.sweep`,
   a pool of its own) on --rows/10 and then --rows open shipments with the same
   --due of them past their promise: time per due shipment at each size, and
   their ratio. Floor: one raw SQL statement a batch, in a transaction, that
   locks the same due rows (FOR UPDATE SKIP LOCKED), inserts bare
   late_deliveries rows and sets `late`. With EXPLAIN (ANALYZE, BUFFERS) of the
   sweep's DUE query, custom and generic plan.
2. Deadline to push: `ontime serve` (1, then 2 processes) on the --rows table;
   a websocket follower (a process of its own, a support key, "all" on every
   server process) notes each `late` message; then --due promises are moved to
   fall due within one second, a few seconds ahead. Per message: receipt time -
   promised_by; per record: late_deliveries.detected_at - promised_by (the
   sweep's `now`); per shipment, the difference of the two.
3. The on-time report for a month of --rows shipments due in it (2 x --rows in
   the table): `api.lateness.store.on_time_report` by carrier, lane and account,
   in this process and over HTTP; floor: `select count(*), avg(...)` over the
   month's promised_by range.

The database is a fresh one on DATABASE_URL's server, else on an embedded
PostgreSQL in a temporary directory. It reports and asserts nothing; the
figures also go to bench/out/lateness.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx

from api.lateness import store as reports
from api.lateness import sweep as deadlines
from api.shell.database import create_pool
from bench import lateness_client, lateness_data
from bench.support import free_port, fresh_database, say, wait_until_ready

OUT_DIR = Path(__file__).resolve().parent / "out"
ROUNDS = 3  # each timing is the median of this many
LEAD = 5.0  # seconds from moving the promises to the first of them falling due
PUSH_AIM = 2.0  # seconds from deadline to the late message, for every one
GIVE_UP = 60.0  # seconds after the last deadline before counting what came
SPAWN = multiprocessing.get_context("spawn")
T = TypeVar("T")

# The floor of the sweep: the same due rows, locked the same way, a bare record
# and the flag, in one statement a batch.
FLOOR_SWEEP = """
with due as (
    select id, account_id, carrier, promised_by, status from shipments
    where promised_by < $1 and not late and status not in ('delivered', 'returned_to_sender', 'cancelled')
    order by promised_by
    limit $2
    for update skip locked
), recorded as (
    insert into late_deliveries (id, shipment_id, account_id, carrier, promised_by, detected_at, detected_by,
                                 status_at_detection)
    select 'late_' || substr(id, 5), id, account_id, carrier, promised_by, $1, 'deadline', status from due
)
update shipments s set late = true from due where s.id = due.id
"""

FLOOR_REPORT = """
select count(*), avg(extract(epoch from delivered_at - promised_by))
from shipments where promised_by >= $1 and promised_by < $2
"""

MOVE_PROMISES = """
update shipments s set promised_by = $2::timestamptz + u.n * $3::interval
from unnest($1::text[]) with ordinality as u(id, n)
where s.id = u.id
"""


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p99": None, "max": None}
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": at(0.50), "p99": at(0.99), "max": ordered[-1]}


# -- the database --------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Pool]]:
    """A connection for the setup and a pool like the app's for the code under test."""
    conn = await asyncpg.connect(url)
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        yield conn, pool
    finally:
        await pool.close()
        await conn.close()


async def timed(work: Awaitable[T]) -> tuple[T, float, float]:
    """Its result, and the wall and this process's CPU seconds it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await work
    return result, time.perf_counter() - wall, time.process_time() - cpu


# -- 1. the sweep at two sizes ---------------------------------------------------


async def floor_sweep(pool: asyncpg.Pool, now: datetime) -> int:
    total = 0
    async with pool.acquire() as conn:
        while True:
            async with conn.transaction():
                count = int((await conn.execute(FLOOR_SWEEP, now, deadlines.BATCH)).split()[-1])
            total += count
            if count < deadlines.BATCH:
                return total


async def explain_due(conn: asyncpg.Connection) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the sweep's first batch, as a fresh
    statement plans it (custom) and as a cached one may (generic); rolled back."""
    plans = {}
    await conn.execute(f"prepare bench_due(timestamptz, int) as {deadlines.DUE}")
    try:
        for name, mode in (("custom", "force_custom_plan"), ("generic", "force_generic_plan")):
            transaction = conn.transaction()
            await transaction.start()
            try:
                await conn.execute(f"set local plan_cache_mode = {mode}")
                now = datetime.now(UTC).isoformat()
                rows = await conn.fetch(
                    f"explain (analyze, buffers, costs off) execute bench_due('{now}', {deadlines.BATCH})"
                )
                plans[name] = [r[0] for r in rows]
            finally:
                await transaction.rollback()
    finally:
        await conn.execute("deallocate bench_due")
    return plans


def plan_summary(plan: list[str]) -> list[str]:
    """The plan's nodes and its execution time, without the detail lines."""
    kept = [line for line in plan if line.lstrip().startswith("->") or not line.startswith(" ")]
    return [
        re.sub(r" \(actual time=[\d.]+\.\.([\d.]+) rows=([\d.]+) loops=(\d+)\)", r" (\1 ms, \2 rows)", line)
        for line in kept
        if not line.startswith(("Planning", "Buffers"))
    ]


def plan_headline(plan: list[str]) -> str:
    """The scans a plan makes (rows out, rows filtered away) and its execution time, on one line."""
    parts = []
    for n, line in enumerate(plan):
        if "Scan " in line:
            name = re.sub(r"^[\s>-]+| \(.*", "", line)
            rows = re.search(r"rows=([\d.]+)", line)
            removed = next(
                (detail.split(":")[1].strip() for detail in plan[n + 1 : n + 6] if "Rows Removed by Filter" in detail),
                "0",
            )
            parts.append(f"{name} ({rows[1]} rows, {removed} filtered out)" if rows else f"{name} (never executed)")
    execution = next((line for line in plan if line.startswith("Execution Time")), "")
    return "; ".join(parts) + f"; {execution.lower()}"


async def measure_sweep(conn: asyncpg.Connection, pool: asyncpg.Pool, rows: int, due: int) -> dict:
    """Alternate the floor and the sweep, ROUNDS times, undoing each; the last
    sweep's records stay."""
    await lateness_data.reset_sweep(conn)
    plans = await explain_due(conn)
    figures: dict[str, list[dict]] = {"sweep": [], "floor": []}
    for round_ in range(ROUNDS):
        for name, run in (("floor", floor_sweep), ("sweep", deadlines.sweep)):
            await lateness_data.reset_sweep(conn)
            recorded, wall, cpu = await timed(run(pool, datetime.now(UTC)))
            figures[name].append({"seconds": wall, "cpu_seconds": cpu, "recorded": recorded})
            say(
                f"    round {round_ + 1}: {name} {recorded:,} in {wall:.2f} s ({wall / due * 1e6:.0f} µs each,"
                f" this process's CPU {cpu / wall:.0%})"
            )
    result = {"rows": rows, "due": due, "plans": plans}
    for name, runs in figures.items():
        result[name] = {
            "us_per_due": median([r["seconds"] for r in runs]) / due * 1e6,
            "bench_cpu_share": median([r["cpu_seconds"] / r["seconds"] for r in runs]),
            "runs": runs,
        }
    result["sweep_to_floor"] = result["sweep"]["us_per_due"] / result["floor"]["us_per_due"]
    return result


async def sweep_at_two_sizes(url: str, rows: int, due: int) -> dict:
    small = rows // 10
    generated_at = datetime.now(UTC)
    results = {}
    async with connected(url) as (conn, pool):
        for first, last in ((1, small), (small + 1, rows)):
            say(f"generating {last - first + 1:,} open shipments ({last:,} in all, {due:,} of them due)…")
            await lateness_data.insert_open(conn, first, last, due, generated_at)
            await conn.execute("vacuum (analyze) shipments")
            say(f"sweep at {last:,} rows")
            results[str(last)] = await measure_sweep(conn, pool, last, due)
    return results


# -- 2. deadline to push, over real processes -------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def ontime_servers(database_url: str, admin_key: str, count: int) -> Iterator[list[tuple[int, str]]]:
    """`count` `ontime serve` processes on one database; yields (pid, base URL) each.
    Their output goes to bench/out/lateness-serve-<n>.log."""
    env = {**os.environ, "DATABASE_URL": database_url, "ONTIME_BOOTSTRAP_ADMIN_KEY": admin_key}
    started: list[tuple[subprocess.Popen, str]] = []
    try:
        for n in range(count):
            port = free_port()
            with (OUT_DIR / f"lateness-serve-{n + 1}.log").open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level", "warning"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, f"http://127.0.0.1:{port}"))
        for process, base_url in started:
            wait_until_ready(process, base_url)
        yield [(process.pid, base_url) for process, base_url in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def support_key(base_url: str, admin_key: str) -> str:
    response = httpx.post(
        f"{base_url}/v1/keys",
        json={"role": "support", "name": "bench lateness"},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["secret"]


def promises_to_move(rows: int, due: int, run: int) -> list[str]:
    """`due` open shipments spread over the table, other ones for each run,
    none of those the sweep measure made late."""
    step = (rows - due) // due
    if step < 2:
        raise SystemExit("bench: --rows must be at least three times --due")
    return [f"shp_open_{i:08d}" for i in range(due + 1 + run, rows + 1, step)][:due]


async def _move_promises(url: str, ids: list[str], first: datetime) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(MOVE_PROMISES, ids, first, timedelta(seconds=1) / len(ids))
    finally:
        await conn.close()


async def _lateness_records(url: str, ids: list[str]) -> dict[str, float]:
    """Seconds from promised_by to detected_at, by shipment."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "select shipment_id, extract(epoch from detected_at - promised_by)::float8 from late_deliveries"
            " where shipment_id = any($1::text[])",
            ids,
        )
        return {r[0]: r[1] for r in rows}
    finally:
        await conn.close()


def measure_push(url: str, admin_key: str, token: str, processes: int, ids: list[str]) -> dict:
    due = len(ids)
    with ontime_servers(url, admin_key, processes) as servers:
        parent, child = SPAWN.Pipe()
        live_urls = [base.replace("http://", "ws://") + "/v1/live" for _, base in servers]
        follower = SPAWN.Process(target=lateness_client.follow, args=(live_urls, token, due, child), daemon=True)
        follower.start()
        try:
            if not parent.poll(60):
                raise SystemExit("bench: the websocket follower did not subscribe within 60 s")
            parent.recv()
            first = datetime.now(UTC) + timedelta(seconds=LEAD)
            cpu_before = sum(cpu_seconds(pid) for pid, _ in servers)
            asyncio.run(_move_promises(url, ids, first))
            moved_with = (first - datetime.now(UTC)).total_seconds()
            say(f"    {due:,} promises fall due from {first:%H:%M:%S.%f} (moved with {moved_with:.1f} s to spare)")
            last_deadline = first.timestamp() + 1.0
            if parent.poll(max(0.0, last_deadline + GIVE_UP - time.time())):
                receipts: lateness_client.Receipts = parent.recv()
                parent.send("stop")
            else:
                parent.send("stop")
                receipts = parent.recv()
            server_cpu = sum(cpu_seconds(pid) for pid, _ in servers) - cpu_before
        finally:
            follower.join(10)
            if follower.is_alive():
                follower.kill()
    ours = set(ids)
    connections = []
    for late in receipts.late:
        delays = [delay for shipment_id, delay in late if shipment_id in ours]
        connections.append(
            {
                "received": len(delays),
                "within_aim": sum(1 for d in delays if d <= PUSH_AIM),
                **percentiles(delays),
            }
        )
    pooled = [delay for late in receipts.late for shipment_id, delay in late if shipment_id in ours]
    detected = asyncio.run(_lateness_records(url, ids))
    # what came after the sweep's `now`: the rest of its batches, the commit, the hub, the socket
    after_detection = [
        delay - detected[shipment_id]
        for late in receipts.late
        for shipment_id, delay in late
        if shipment_id in detected
    ]
    result = {
        "processes": processes,
        "due": due,
        "received": min(c["received"] for c in connections),
        "within_aim": min(c["within_aim"] for c in connections),
        "push": percentiles(pooled),
        "recorded": len(detected),
        "detect": percentiles(list(detected.values())),
        "after_detection": percentiles(after_detection),
        "server_cpu_seconds": server_cpu,
        "connections": connections,
        "closes": receipts.closes,
    }
    push, detect = result["push"], result["detect"]
    say(
        f"    {result['within_aim']:,}/{due:,} pushed within {PUSH_AIM:.0f} s on every connection;"
        f" push p99 {_s(push['p99'])}, max {_s(push['max'])}; detected p99 {_s(detect['p99'])};"
        f" servers' CPU {server_cpu:.1f} s"
    )
    return result


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


# -- 3. the on-time report ------------------------------------------------------------


def report_month(today: date) -> date:
    """Last month: every promise in it has passed."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


async def measure_report_in_process(url: str, month: date, rows: int) -> dict:
    async with connected(url) as (conn, pool):
        say(f"generating a month ({month:%Y-%m}) of {rows:,} shipments due in it…")
        await lateness_data.insert_month(conn, month, rows)
        await conn.execute("vacuum (analyze) shipments, late_deliveries")
        in_table = await conn.fetchval("select count(*) from shipments")
        say(f"    {in_table:,} shipments in the table")
        start = datetime(month.year, month.month, 1, tzinfo=UTC)
        end = (start + timedelta(days=32)).replace(day=1)
        results: dict = {"month": f"{month:%Y-%m}", "shipments_in_table": in_table}
        # the sweep's query again, now that the past is full of closed promises (none due)
        results["due_plans_with_history"] = await explain_due(conn)
        floor = [(await timed(pool.fetchrow(FLOOR_REPORT, start, end)))[1] for _ in range(ROUNDS)]
        results["floor_seconds"] = median(floor)
        say(f"    floor (count, avg over the month): {median(floor):.2f} s")
        for group_by in ("carrier", "lane", "account"):
            runs = [
                (await timed(reports.on_time_report(pool, month, group_by, datetime.now(UTC))))[1]
                for _ in range(ROUNDS)
            ]
            results[group_by] = {"in_process_seconds": median(runs), "in_process_runs": runs}
            say(f"    on_time_report by {group_by}: {median(runs):.2f} s")
    return results


def measure_report_over_http(url: str, admin_key: str, results: dict) -> None:
    with ontime_servers(url, admin_key, 1) as [(_, base_url)]:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300) as http:
            for group_by in ("carrier", "lane", "account"):
                runs, statuses = [], set()
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    response = http.get("/v1/reports/on-time", params={"month": results["month"], "group_by": group_by})
                    runs.append(time.perf_counter() - started)
                    statuses.add(response.status_code)
                results[group_by] |= {
                    "http_seconds": median(runs),
                    "http_runs": runs,
                    "http_statuses": sorted(statuses),
                }
                say(f"    GET /v1/reports/on-time by {group_by}: {median(runs):.2f} s (HTTP {sorted(statuses)})")


# -- the run ----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lateness", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="open shipments, and the report month's (default 1,000,000)"
    )
    parser.add_argument("--due", type=int, default=10_000, help="promises falling due at once (default 10,000)")
    args = parser.parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    admin_key = f"bench-admin-{secrets.token_hex(16)}"
    results: dict = {"rows": args.rows, "due": args.due, "cpus": os.cpu_count(), "rounds": ROUNDS}

    with fresh_database("lateness", lateness_data.INSERT_ACCOUNTS) as url:
        say(f"(1) the deadline sweep, in this process, at {args.rows // 10:,} and {args.rows:,} rows")
        results["sweep"] = asyncio.run(sweep_at_two_sizes(url, args.rows, args.due))

        say(f"(2) deadline to push: {args.due:,} promises due within one second, {args.rows:,} shipments")
        with ontime_servers(url, admin_key, 1) as [(_, base_url)]:
            token = support_key(base_url, admin_key)
        results["push"] = {}
        for run, processes in enumerate((1, 2)):
            say(f"  {processes} ontime process(es)")
            ids = promises_to_move(args.rows, args.due, run)
            results["push"][str(processes)] = measure_push(url, admin_key, token, processes, ids)

        say("(3) the on-time report")
        results["report"] = asyncio.run(measure_report_in_process(url, report_month(date.today()), args.rows))
        measure_report_over_http(url, admin_key, results["report"])

    out = OUT_DIR / "lateness.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    say(f"wrote {out}")


def print_table(results: dict) -> None:
    due, rows = results["due"], results["rows"]
    small, large = results["sweep"][str(rows // 10)], results["sweep"][str(rows)]
    print()
    print(f"(1) deadline sweep, {due:,} due, µs per due shipment (median of {results['rounds']})")
    line = "  {:<36} {:>16} {:>16} {:>12}"
    print(line.format("", f"{rows // 10:,} rows", f"{rows:,} rows", "large/small"))
    for name, label in (("sweep", "sweep()"), ("floor", "floor: one SQL statement a batch")):
        a, b = small[name]["us_per_due"], large[name]["us_per_due"]
        print(line.format(label, f"{a:,.0f}", f"{b:,.0f}", f"{b / a:.2f}x"))
    print(line.format("sweep / floor", f"{small['sweep_to_floor']:.1f}x", f"{large['sweep_to_floor']:.1f}x", ""))
    print(
        line.format(
            "bench process CPU share of sweep()",
            f"{small['sweep']['bench_cpu_share']:.0%}",
            f"{large['sweep']['bench_cpu_share']:.0%}",
            "",
        )
    )
    print(f"  aim: large/small < 1.5x. DUE query, first batch of {deadlines.BATCH:,} at {rows:,} rows:")
    for name, plan in large["plans"].items():
        print(f"    {name} plan:")
        for node in plan_summary(plan):
            print(f"      {node}")

    print()
    print(f"(2) deadline to push, {due:,} promises due within one second, {rows:,} shipments")
    line = "  {:<44} {:>22} {:>22}"
    push = results["push"]
    print(line.format("", *(f"{p} process{'es' if p != '1' else ''}" for p in push)))
    print(
        line.format(
            f"late messages within {PUSH_AIM:.0f} s (every connection)",
            *(f"{r['within_aim']:,}/{r['due']:,}" for r in push.values()),
        )
    )
    print(
        line.format(
            "receipt - promised_by p50 / p99 / max",
            *(
                " / ".join(_s(r["push"][k]).removesuffix(" s") for k in ("p50", "p99", "max")) + " s"
                for r in push.values()
            ),
        )
    )
    print(
        line.format(
            "detected_at - promised_by p50 / p99 / max",
            *(
                " / ".join(_s(r["detect"][k]).removesuffix(" s") for k in ("p50", "p99", "max")) + " s"
                for r in push.values()
            ),
        )
    )
    print(
        line.format(
            "receipt - detected_at p50 / p99 / max",
            *(
                " / ".join(_s(r["after_detection"][k]).removesuffix(" s") for k in ("p50", "p99", "max")) + " s"
                for r in push.values()
            ),
        )
    )
    print(
        line.format(
            "recorded / received (worst connection)", *(f"{r['recorded']:,} / {r['received']:,}" for r in push.values())
        )
    )
    print(line.format("servers' CPU seconds", *(f"{r['server_cpu_seconds']:.1f}" for r in push.values())))
    print(line.format("connections closed", *(str(r["closes"] or "none") for r in push.values())))

    report = results["report"]
    print()
    print(
        f"(3) on-time report, {report['month']}: {rows:,} due, {report['shipments_in_table']:,} in the table"
        f" (median of {results['rounds']})"
    )
    line = "  {:<34} {:>10} {:>10} {:>10}"
    print(line.format("", "carrier", "lane", "account"))
    floor = report["floor_seconds"]
    for key, label in (("in_process_seconds", "on_time_report()"), ("http_seconds", "GET /v1/reports/on-time")):
        print(line.format(label, *(f"{report[g][key]:.2f} s" for g in ("carrier", "lane", "account"))))
    print(
        line.format(
            "on_time_report() / floor",
            *(f"{report[g]['in_process_seconds'] / floor:.1f}x" for g in ("carrier", "lane", "account")),
        )
    )
    print(f"  floor (select count(*), avg(...) over the month's promised_by): {floor:.2f} s; aim: under 2 s")
    print("  the sweep's DUE query with this month in the table (nothing due):")
    for name, plan in report["due_plans_with_history"].items():
        print(f"    {name}: {plan_headline(plan)}")


if __name__ == "__main__":
    main()
