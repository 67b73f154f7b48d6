"""Lateness at scale: `python -m bench.lateness [--rows N] [--due N] [--part all|deadlines|report]`.

Three measures, each beside a floor measured in the same run:

1. The deadline sweep, called in this process (`api.lateness.sweep.sweep`,
   a pool of its own) on --rows/10 and then --rows open shipments with the same
   --due of them past their promise: time per due shipment at each size, and
   their ratio. Floor: one raw SQL statement a batch, in a transaction, that
   locks the same due rows (FOR UPDATE SKIP LOCKED), inserts bare
   late_deliveries rows and sets `late`. With EXPLAIN (ANALYZE, BUFFERS) of the
   sweep's DUE query, custom and generic plan.
2. Deadline to push (no floor): `ontime serve` (1, then 2 processes) on the
   --rows table; a websocket follower (a process of its own, a support key,
   "all" on every server process) notes each `late` message; then --due
   promises are moved to fall due within one second, a few seconds ahead. Per
   message: receipt time - promised_by; per record: late_deliveries.detected_at -
   promised_by (the sweep's `now`); per shipment, the difference of the two.
3. The monthly report for a month of --rows shipments due in it (2.9 x --rows
   in the table), a quarter of its deliveries rated and a case on one shipment in
   fifty, and the month before alike with 9/10 of the shipments:
   `api.lateness.store.on_time_report` (on time, satisfaction, cases,
   recurring problems against the month before) by carrier, lane and account,
   in this process and over HTTP (once the server's sweep has recorded the
   months' past-due cases, a backlog of its first seconds); floor:
   `select count(*), avg(...)` over the month's promised_by range.

`--part report` measures (3) alone, on a table holding the two months only;
`--part deadlines` (1) and (2) without (3).

The database is a fresh one (bench/harness.py). It reports and asserts
nothing; the figures also go to bench/out/lateness.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx

from api.lateness import store as reports
from api.lateness import sweep as deadlines
from api.shell.database import create_pool
from bench import harness, lateness_client, lateness_data
from bench.harness import Aim, Benchmark, Figure, Result, Row, figure, median, percentiles, say, timed, usage
from domain.report import previous_month

ROUNDS = 3  # each timing is the median of this many
LEAD = 5.0  # seconds from moving the promises to the first of them falling due
PUSH_AIM = 2.0  # seconds from deadline to the late message, for every one
GIVE_UP = 60.0  # seconds after the last deadline before counting what came
SCALING_AIM = Aim(max_value=1.5)  # the sweep's time per due shipment, large table / small
REPORT_AIM = Aim(max_value=2.0)
GROUPS = ("carrier", "lane", "account")

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


async def support_key(base_url: str, admin_key: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as http:
        key = {"role": "support", "name": "bench lateness"}
        return (await harness.call(http, "POST", "/v1/keys", key, admin_key))["secret"]


def promises_to_move(rows: int, due: int, run: int) -> list[str]:
    """`due` open shipments spread over the table, other ones for each run,
    none of those the sweep measure made late."""
    step = (rows - due) // due
    if step < 2:
        raise SystemExit("bench: --rows must be at least three times --due")
    return [f"shp_open_{i:08d}" for i in range(due + 1 + run, rows + 1, step)][:due]


def measure_push(url: str, admin_key: str, token: str, processes: int, ids: list[str]) -> dict:
    due = len(ids)
    env = harness.server_env(url, admin_key)
    commands = [harness.ontime(f"lateness-serve-{n + 1}") for n in range(processes)]
    with harness.serving(env, *commands) as servers:
        live_urls = [server.live_url for server in servers]
        with harness.spawned(lateness_client.follow, live_urls, token, due) as pipe:
            if not pipe.poll(60):
                raise SystemExit("bench: the websocket follower did not subscribe within 60 s")
            pipe.recv()
            first = datetime.now(UTC) + timedelta(seconds=LEAD)
            with usage(*(server.pid for server in servers)) as used:
                asyncio.run(harness.fetch(url, MOVE_PROMISES, ids, first, timedelta(seconds=1) / len(ids)))
                moved_with = (first - datetime.now(UTC)).total_seconds()
                say(f"    {due:,} promises fall due from {first:%H:%M:%S.%f} (moved with {moved_with:.1f} s to spare)")
                last_deadline = first.timestamp() + 1.0
                if pipe.poll(max(0.0, last_deadline + GIVE_UP - time.time())):
                    receipts: lateness_client.Receipts = pipe.recv()
                    pipe.send("stop")
                else:
                    pipe.send("stop")
                    receipts = pipe.recv()
    ours = set(ids)
    connections = []
    for late in receipts.late:
        delays = [delay for shipment_id, delay in late if shipment_id in ours]
        connections.append(
            {"received": len(delays), "within_aim": sum(1 for d in delays if d <= PUSH_AIM), **percentiles(delays)}
        )
    pooled = [delay for late in receipts.late for shipment_id, delay in late if shipment_id in ours]
    # seconds from promised_by to detected_at, by shipment
    detected = dict(
        asyncio.run(
            harness.fetch(
                url,
                "select shipment_id, extract(epoch from detected_at - promised_by)::float8 from late_deliveries"
                " where shipment_id = any($1::text[])",
                ids,
            )
        )
    )
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
        "server_cpu_seconds": used.cpu,
        "server_cpu_us_per_late": used.us_per(len(detected)),
        "connections": connections,
        "closes": receipts.closes,
    }
    say(
        f"    {result['within_aim']:,}/{due:,} pushed within {PUSH_AIM:.0f} s on every connection; {push_detail(result)}"
    )
    return result


def _s(p: dict[str, float | None]) -> str:
    return " / ".join(harness.number(p[k]) for k in ("p50", "p99", "max")) + " s"


def push_detail(r: dict) -> str:
    return (
        f"receipt - promised_by p50/p99/max {_s(r['push'])}; detected_at - promised_by {_s(r['detect'])};"
        f" receipt - detected_at {_s(r['after_detection'])}; recorded {r['recorded']:,} / received {r['received']:,}"
        f" (worst connection); servers' CPU {r['server_cpu_seconds']:.1f} s"
        f" ({harness.number(r['server_cpu_us_per_late'])} µs a late shipment); closed: {r['closes'] or 'none'}"
    )


# -- 3. the on-time report ------------------------------------------------------------


def report_month(today: date) -> date:
    """Last month: every promise in it has passed."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


async def measure_report_in_process(url: str, month: date, rows: int) -> dict:
    async with connected(url) as (conn, pool):
        say(f"generating a month ({month:%Y-%m}) of {rows:,} shipments due in it…")
        await lateness_data.insert_month(conn, month, rows)
        await lateness_data.insert_month_voice(conn)
        before = previous_month(month)
        say(f"    and the month before ({before:%Y-%m}), {rows * 9 // 10:,} shipments, for the recurring problems…")
        await lateness_data.insert_month(conn, before, rows * 9 // 10, previous=True)
        await lateness_data.insert_month_voice(conn, previous=True)
        await conn.execute("vacuum (analyze) shipments, late_deliveries, feedback, cases")
        in_table = await conn.fetchval("select count(*) from shipments")
        delivered, ratings, cases = (
            await conn.fetchval(
                "select count(*) from shipments where id >= 'shp_month_' and id < 'shp_month`'"
                " and delivered_at is not null"
            ),
            await conn.fetchval(
                "select count(*) from feedback where shipment_id >= 'shp_month_' and shipment_id < 'shp_month`'"
            ),
            await conn.fetchval("select count(*) from cases where id >= 'cas_month_' and id < 'cas_month`'"),
        )
        say(
            f"    {in_table:,} shipments in the table; the month's {delivered:,} deliveries,"
            f" {ratings:,} ratings and {cases:,} cases"
        )
        start = datetime(month.year, month.month, 1, tzinfo=UTC)
        end = (start + timedelta(days=32)).replace(day=1)
        results: dict = {
            "month": f"{month:%Y-%m}",
            "shipments_in_table": in_table,
            "delivered": delivered,
            "ratings": ratings,
            "cases": cases,
        }
        # the sweep's query again, now that the past is full of closed promises (none due)
        results["due_plans_with_history"] = await explain_due(conn)
        floor = [(await timed(pool.fetchrow(FLOOR_REPORT, start, end)))[1] for _ in range(ROUNDS)]
        results["floor_seconds"] = median(floor)
        say(f"    floor (count, avg over the month): {median(floor):.2f} s")
        for group_by in GROUPS:
            runs = [
                (await timed(reports.on_time_report(pool, month, group_by, datetime.now(UTC))))[1]
                for _ in range(ROUNDS)
            ]
            results[group_by] = {"in_process_seconds": median(runs), "in_process_runs": runs}
            say(f"    on_time_report by {group_by}: {median(runs):.2f} s")
    return results


# The months' cases are long past their deadlines: a new server's sweep records
# those breaches as it starts (tens of thousands of writes, some seconds). The
# report over HTTP is measured once the sweep has caught up, not beside it.
CASES_PAST_DUE = """
select count(*) from cases
where status not in ('resolved', 'closed')
  and (response_due < now() and first_response_at is null and response_breached_at is null
       or resolution_due < now() and resolution_breached_at is null)
"""


async def wait_for_the_case_sweep(url: str, give_up: float = 120.0) -> float:
    """Seconds until no case is past due unrecorded (or give_up)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        for _ in range(int(give_up / 0.5)):
            if not await conn.fetchval(CASES_PAST_DUE):
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    return time.perf_counter() - started


def measure_report_over_http(url: str, admin_key: str, results: dict) -> None:
    env = harness.server_env(url, admin_key)
    with harness.serving(env, harness.ontime("lateness-serve-1")) as [server]:
        results["case_sweep_seconds"] = asyncio.run(wait_for_the_case_sweep(url))
        say(f"    the server's sweep recorded the months' past-due cases in {results['case_sweep_seconds']:.1f} s")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300) as http:
            for group_by in GROUPS:
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


def measure(options: argparse.Namespace) -> Result:
    rows, due = options.rows, options.due
    admin_key = harness.admin_key()
    details: dict = {"rows": rows, "due": due, "rounds": ROUNDS}
    with harness.fresh_database("lateness", lateness_data.INSERT_ACCOUNTS) as url:
        if options.part == "report":
            say("(3) the on-time report, alone")
            details["report"] = asyncio.run(measure_report_in_process(url, report_month(date.today()), rows))
            measure_report_over_http(url, admin_key, details["report"])
            return Result(report_rows(details), report_notes(details), details)
        say(f"(1) the deadline sweep, in this process, at {rows // 10:,} and {rows:,} rows")
        details["sweep"] = asyncio.run(sweep_at_two_sizes(url, rows, due))

        say(f"(2) deadline to push: {due:,} promises due within one second, {rows:,} shipments")
        with harness.serving(harness.server_env(url, admin_key), harness.ontime("lateness-serve-1")) as [server]:
            token = asyncio.run(support_key(server.url, admin_key))
        details["push"] = {}
        for run, processes in enumerate((1, 2)):
            say(f"  {processes} ontime process(es)")
            ids = promises_to_move(rows, due, run)
            details["push"][str(processes)] = measure_push(url, admin_key, token, processes, ids)

        if options.part == "deadlines":
            return Result(sweep_rows(details) + push_rows(details), notes(details), details)
        say("(3) the on-time report")
        details["report"] = asyncio.run(measure_report_in_process(url, report_month(date.today()), rows))
        measure_report_over_http(url, admin_key, details["report"])
    return Result(sweep_rows(details) + push_rows(details) + report_rows(details), notes(details), details)


def sweep_rows(details: dict) -> list[Row]:
    small, large = details["sweep"][str(details["rows"] // 10)], details["sweep"][str(details["rows"])]

    def side(result: dict, name: str) -> Figure:
        cpu = f"this process's CPU {result[name]['bench_cpu_share']:.0%}"
        return figure(result[name]["us_per_due"], detail=cpu, runs=result[name]["runs"])

    def scaling(name: str) -> Figure:
        return figure(large[name]["us_per_due"] / small[name]["us_per_due"])

    return [
        *(
            Row(f"(1) sweep(), {r['due']:,} due, {r['rows']:,} rows", "µs/due", side(r, "sweep"), side(r, "floor"))
            for r in (small, large)
        ),
        Row(
            f"(1) sweep(), {large['rows']:,} / {small['rows']:,} rows",
            "x",
            scaling("sweep"),
            scaling("floor"),
            SCALING_AIM,
        ),
    ]


def push_rows(details: dict) -> list[Row]:
    return [
        Row(
            f"(2) deadline to push, {p} process{'es' if p != '1' else ''}",
            f"of {r['due']:,} within {PUSH_AIM:.0f} s",
            figure(r["within_aim"], detail=push_detail(r)),
            aim=Aim(min_value=r["due"]),
        )
        for p, r in details["push"].items()
    ]


def report_rows(details: dict) -> list[Row]:
    report = details["report"]
    floor = figure(report["floor_seconds"])

    def ontime(group_by: str, key: str) -> Figure:
        statuses = report[group_by].get("http_statuses")
        return figure(report[group_by][key], detail=f"HTTP {statuses}" if key == "http_seconds" else "")

    return [
        Row(f"(3) {label} by {g}", "s", ontime(g, key), floor, REPORT_AIM)
        for key, label in (("in_process_seconds", "on_time_report()"), ("http_seconds", "GET /v1/reports/on-time"))
        for g in GROUPS
    ]


def report_note(details: dict) -> str:
    rows, report = details["rows"], details["report"]
    return (
        f"(3): the month {report['month']}, {rows:,} due, {report['delivered']:,} delivered,"
        f" {report['shipments_in_table']:,} in the table, {report['ratings']:,} ratings and {report['cases']:,} cases"
        " (the report's satisfaction, cases and recurring problems, against a month before of 9/10 the shipments);"
        " floor: select count(*), avg(...) over the month's promised_by; over HTTP once the server's sweep has"
        f" recorded the months' past-due cases ({report.get('case_sweep_seconds', 0):.1f} s)."
    )


def report_notes(details: dict) -> list[str]:
    return ["", f"Each timing is the median of {ROUNDS}. {report_note(details)}"]


def notes(details: dict) -> list[str]:
    rows = details["rows"]
    lines = [
        "",
        f"Each timing is the median of {ROUNDS}. (2): late messages within {PUSH_AIM:.0f} s on the worst connection;"
        f" no floor. {report_note(details) if 'report' in details else ''}",
        f"(1) the sweep's DUE query, first batch of {deadlines.BATCH:,} at {rows:,} rows:",
    ]
    for name, plan in details["sweep"][str(rows)]["plans"].items():
        lines += [f"    {name} plan:", *(f"      {node}" for node in plan_summary(plan))]
    if "report" in details:
        lines.append("(3) the sweep's DUE query with the month in the table (nothing due):")
        lines += [
            f"    {name}: {plan_headline(plan)}" for name, plan in details["report"]["due_plans_with_history"].items()
        ]
    return lines


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="open shipments, and the report month's")
    parser.add_argument("--due", type=int, default=10_000, help="promises falling due at once")
    parser.add_argument(
        "--part",
        choices=("all", "deadlines", "report"),
        default="all",
        help="everything, the sweep and deadline to push (1, 2), or the monthly report (3) alone",
    )


BENCHMARK = Benchmark("lateness", __doc__, options, {"rows": 20_000, "due": 1_000}, measure)


def main(argv: list[str] | None = None) -> None:
    harness.main(BENCHMARK, argv)


if __name__ == "__main__":
    main()
