"""The live feed's benchmark: `python -m bench.live [--seconds N] [--batch N] [--scale F]`.

Latency from commit to receipt, in two shapes of load:
  (a) 2,000 connections over 200 accounts (10 each), 500 changes/s;
  (b) 1,000 connections on one account, 20 changes/s;
each against a floor measured in the same run: a bare `websockets` server
broadcasting the same frames (real change messages from the ontime run) at the
same rate with the same fan-out (bench/live_floor.py). Then the resident memory
of one ontime process per idle connection, 10,000 of them, each subscribed to
"all" of its account, against the same for the floor. `--scale` takes a fraction
of every connection count and of (a)'s accounts and rate.

`ontime serve` runs as a subprocess on a fresh database (bench/harness.py). The
followers and the writer run in processes of their own (bench/live_clients.py).

The latency is an upper bound: it starts when the writer sends the request, so
it includes the request's own work before the commit; the floor's starts at the
broadcast. A lower bound is reported beside it: from the response (the commit
came before it). Every receipt counts: in (a) each change reaches 10 followers.
In (a) the writer sends `--batch` events per request to the batch endpoint, as
one request per change did not reach 500/s on a 2-core machine; `--batch 1`
sends one event per request.

Beside ontime's latency: the server's event-loop lag (a task in ontime sleeps
10 ms, again and again, and /metrics counts how late it woke) and its garbage
collections over the same seconds; and the latency split into its parts, per
change: the server traces when each change reached its hub, was read, dispatched
and written to its sockets (ONTIME_LIVE_TRACE), and the followers note each
receipt's seq, so that the writer's stamp, the trace and the last receipt join:

  request    sent -> the NOTIFY at the hub (the request's work, its commit, the wake-up)
  wake       NOTIFY -> the hub begins to read the log (the loop's turn)
  read       the log query (a pool connection, the round trip)
  dispatch   the change offered to every outbox that covers it
  outboxes   dispatch -> its last frame written to a socket (every writer task's turn)
  follower   last frame written -> last receipt (the kernel, the followers' loops)

And, for ontime and the floor alike, the commit latency of the same PostgreSQL
meanwhile, from a probe of its own (one small insert committed 20 times a
second): on a shared machine, a request part that is slow exactly when the
probe's commits are slow was the database's, for everyone.

It reports; it asserts nothing. The figures also go to bench/out/live.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import secrets
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from bench import harness, live_clients, live_floor
from bench.harness import Aim, Benchmark, Figure, Result, Row, Server, figure, percentiles, rss_kib, say, spawned, usage
from bench.live_clients import Shipment

WARMUP = 1.0  # seconds of load before receipts count
GRACE = 1.0  # seconds after the last change for the stragglers
FOLLOWER_PROCESSES = 2
MEMORY_CONNECTIONS = 10_000
MEMORY_PROCESSES = 4  # the fd limit is 20,000 a process; 2,500 connections each
MEMORY_WARM_CONNECTIONS = 20
MEMORY_AIM_KIB = 30.0
SHIPMENTS_PER_ACCOUNT = 5


@dataclass(frozen=True)
class Scenario:
    name: str
    connections: int
    accounts: int
    rate: float  # changes a second
    batch: int  # events a request
    aim_p99_ms: float

    @property
    def fan_out(self) -> float:
        return self.connections / self.accounts

    @property
    def title(self) -> str:
        accounts = f"{self.accounts} account{'s' if self.accounts > 1 else ''}"
        return f"{self.connections:,} conns / {accounts}, {self.rate:g} changes/s"


def scenarios(batch: int, scale: float) -> tuple[Scenario, Scenario]:
    return (
        Scenario("a", round(2000 * scale), round(200 * scale), 500.0 * scale, batch, 50.0),
        Scenario("b", round(1000 * scale), 1, 20.0, 1, 100.0),
    )


# -- the floor's process -------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    pid: int
    live_url: str
    # broadcast(frames, rate, seconds, batch) -> when each frame went out
    broadcast: Callable[[list[str], float, float, int], array]


@contextlib.contextmanager
def floor_server() -> Iterator[Floor]:
    """The bare websockets server (bench/live_floor.py) in a process of its own."""
    port = harness.free_port()
    with spawned(live_floor.run, port) as pipe:
        try:
            _, pid = pipe.recv()

            def broadcast(frames: list[str], rate: float, seconds: float, batch: int) -> array:
                pipe.send(("broadcast", frames, rate, seconds, batch))
                return array("d", pipe.recv())

            yield Floor(pid, f"ws://127.0.0.1:{port}/", broadcast)
        finally:
            pipe.send(("stop",))


@contextlib.contextmanager
def fresh_ontime(env: dict[str, str]) -> Iterator[Server]:
    with harness.serving(env, harness.ontime("ontime-memory")) as [server]:
        yield server


# -- accounts, keys and shipments, over HTTP ------------------------------------


@dataclass(frozen=True)
class Account:
    id: str
    key: str  # a customer key's secret
    shipments: list[Shipment]


async def make_accounts(base_url: str, admin_key: str, count: int) -> list[Account]:
    headers = {"Authorization": f"Bearer {admin_key}"}
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:

        async def post(path: str, body: dict) -> dict:
            async with gate:
                return await harness.call(http, "POST", path, body)

        async def make_account(n: int) -> Account:
            account = await post("/v1/accounts", {"name": f"bench {n}"})
            key = await post("/v1/keys", {"role": "customer", "account_id": account["id"]})
            made = await asyncio.gather(
                *(post("/v1/shipments", _shipment(account["id"])) for _ in range(SHIPMENTS_PER_ACCOUNT))
            )
            shipments = [Shipment(s["id"], s["carrier"], s["tracking_number"]) for s in made]
            return Account(account["id"], key["secret"], shipments)

        return await asyncio.gather(*(make_account(n) for n in range(count)))


def _shipment(account_id: str) -> dict:
    """A shipment as a shop would create it, so that change messages have their real size."""
    return {
        "account_id": account_id,
        "carrier": "dhl",
        "tracking_number": f"JD{secrets.token_hex(8).upper()}",
        "reference": f"order-{secrets.randbelow(10**6)}",
        "service_level": "express",
        "promised_by": "2099-11-22T18:00:00+01:00",
        "origin": {"city": "Zaragoza", "country": "ES", "postal_code": "50001"},
        "destination": {"city": "Lyon", "country": "FR", "postal_code": "69002"},
        "recipient": {"name": "Ana Gómez", "email": "ana@example.com", "phone": "+34600000000"},
    }


def round_robin(accounts: list[Account]) -> list[Shipment]:
    """The shipments in an order that visits every account in turn."""
    return [account.shipments[i] for i in range(SHIPMENTS_PER_ACCOUNT) for account in accounts]


def spread(tokens: list[str], connections: int) -> list[str]:
    """`connections` tokens, the same number (±1) for each."""
    return [tokens[i % len(tokens)] for i in range(connections)]


# -- followers -----------------------------------------------------------------


@dataclass
class Received:
    sent: array  # for each receipt, when its change was sent
    received: array  # and when it arrived
    seqs: array  # and its seq
    samples: dict[int, str]  # frames by seq
    closes: Counter  # connections closed while following, by code
    cpu_seconds: float  # the followers', all processes


@contextlib.contextmanager
def followers(live_url: str, tokens: list[str], processes: int) -> Iterator[Callable[[], Received]]:
    """Processes holding one connection per token, subscribed to "all"; yields `stop()`."""
    with contextlib.ExitStack() as stack:
        pipes = [
            stack.enter_context(spawned(live_clients.follow, live_url, tokens[i::processes], join_seconds=30))
            for i in range(processes)
        ]
        opened, failures = 0, Counter()
        for pipe in pipes:
            _, count, failed = pipe.recv()
            opened += count
            failures.update(failed)
        say(f"    {opened}/{len(tokens)} connections subscribed" + (f"; failed: {dict(failures)}" if failures else ""))

        def stop() -> Received:
            received = Received(array("d"), array("d"), array("q"), {}, Counter(), 0.0)
            for pipe in pipes:
                pipe.send("stop")
            for pipe in pipes:
                receipts: live_clients.Receipts = pipe.recv()
                received.sent.frombytes(receipts.sent)
                received.received.frombytes(receipts.received)
                received.seqs.frombytes(receipts.seqs)
                received.samples.update(receipts.samples)
                received.closes.update(receipts.closes)
                received.cpu_seconds += receipts.cpu_seconds
            return received

        yield stop


# -- latency -------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """For each change, when it was sent and when the sender knew it committed."""

    sent: array
    committed: array
    # the writer's, for ontime
    requests_per_second: float | None = None
    statuses: dict[int, int] | None = None


def measure_latency(
    scenario: Scenario, server: Server | Floor, tokens: list[str], load: Callable[[], Load], database_url: str
) -> tuple[Figure, Received]:
    """Connect the followers, run `load()`, and take the latencies (p99 the
    headline) of the changes sent after the warm-up; for ontime, its loop's lag
    and its collections meanwhile; for both, the database's commit latency
    meanwhile (a probe of its own). Also gives what the followers received."""
    with (
        followers(server.live_url, tokens, FOLLOWER_PROCESSES) as stop,
        spawned(live_clients.probe_commits, database_url) as probe,
    ):
        metrics_before = scrape(server)
        with usage(server.pid) as used:
            sent = load()
            time.sleep(GRACE)
        stalls = stalls_between(metrics_before, scrape(server))
        received = stop()
        probe.send("stop")
        probe_started, probe_took = (array("d", raw) for raw in probe.recv())
    measured_from = sent.sent[0] + WARMUP
    commits = percentiles([t for at, t in zip(probe_started, probe_took, strict=True) if at >= measured_from], 1000)
    committed_at = dict(zip(sent.sent, sent.committed, strict=False))
    counted = [(s, r) for s, r in zip(received.sent, received.received, strict=False) if s >= measured_from]
    upper = percentiles([r - s for s, r in counted], scale=1000)  # from sent: an upper bound
    lower = percentiles([r - committed_at.get(s, s) for s, r in counted], scale=1000)  # from the answer
    measured = [s for s in sent.sent if s >= measured_from]
    data: dict[str, Any] = {
        "max_ms": upper["max"],
        "after_commit_p50_ms": lower["p50"],
        "after_commit_p99_ms": lower["p99"],
        "receipts": len(counted),
        "expected": round(len(measured) * scenario.fan_out),  # changes sent after the warm-up times their fan-out
        "changes_per_second": (len(measured) - 1) / max(1e-9, measured[-1] - measured[0]) if measured else 0.0,
        "closes": dict(received.closes),  # connections closed under load, by close code
        "server_cpu_busy": used.busy,  # the server process's CPU seconds a second
        "server_cpu_wait": used.wait / used.elapsed,  # and seconds a second it was ready to run but waited
        "followers_cpu_busy": received.cpu_seconds / used.elapsed,
        "requests_per_second": sent.requests_per_second,
        "statuses": sent.statuses,
        "probe_commit_p50_ms": commits["p50"],
        "probe_commit_p99_ms": commits["p99"],
        "probe_commit_max_ms": commits["max"],
        **stalls,
    }
    detail = (
        f"max {harness.number(upper['max'])} ms; {data['receipts']}/{data['expected']} receipts,"
        f" {data['changes_per_second']:.0f} changes/s; server {used.busy:.0%} busy,"
        f" {data['server_cpu_wait']:.0%} waiting; followers {data['followers_cpu_busy']:.0%} busy;"
        f" the database's commits meanwhile p99 {harness.number(commits['p99'])} ms, max {harness.number(commits['max'])} ms"
    )
    if stalls:
        detail += f"; {stalls_text(stalls)}"
    result = figure(
        upper["p99"],
        per="receipt",
        count=len(received.sent),
        server=used,
        p50_ms=upper["p50"],
        detail=detail,
        **data,
    )
    say(f"    p99 {harness.number(upper['p99'])} ms; {result.detail}")
    return result, received


# -- the server's stalls, from /metrics ----------------------------------------


def scrape(server: Server | Floor) -> dict[str, dict[tuple[tuple[str, str], ...], float]] | None:
    """ontime's histograms of loop lag and gc pauses, by sample name and labels; None for the floor."""
    if not isinstance(server, Server):
        return None
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics", timeout=10).text):
        if family.name in ("ontime_event_loop_lag_seconds", "ontime_gc_pause_seconds"):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def stalls_between(before: dict | None, after: dict | None) -> dict[str, Any]:
    """The loop's lag (p50, p99 and max as the bucket bounds they fall under; the
    share of ticks over 10 ms) and the collections by generation, between two scrapes."""
    if before is None or after is None:
        return {}

    def delta(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: value - before.get(name, {}).get(labels, 0.0) for labels, value in after.get(name, {}).items()}

    buckets = sorted(
        ((float(dict(labels)["le"]), count) for labels, count in delta("ontime_event_loop_lag_seconds_bucket").items()),
    )
    ticks = buckets[-1][1] if buckets else 0

    def bound(q: float) -> float | None:
        return next((le * 1000 for le, count in buckets if count >= q * ticks), None) if ticks else None

    over_10ms = ticks - next((count for le, count in buckets if le == 0.01), ticks)
    collections = {
        dict(labels)["generation"]: count for labels, count in delta("ontime_gc_pause_seconds_count").items() if count
    }
    gc_seconds = {
        dict(labels)["generation"]: seconds
        for labels, seconds in delta("ontime_gc_pause_seconds_sum").items()
        if seconds
    }
    return {
        "loop_lag_ticks": ticks,
        "loop_lag_p50_ms": bound(0.50),
        "loop_lag_p99_ms": bound(0.99),
        "loop_lag_max_ms": bound(1.0),
        "loop_lag_over_10ms": over_10ms / ticks if ticks else None,
        "gc_collections": collections,
        "gc_ms": {generation: seconds * 1000 for generation, seconds in gc_seconds.items()},
    }


def stalls_text(stalls: dict[str, Any]) -> str:
    def at_most(ms: float | None) -> str:
        return "-" if ms is None else ("> 2,000" if ms == float("inf") else f"<= {harness.number(ms)}")

    collections = ", ".join(
        f"gen{g} {stalls['gc_collections'][g]:.0f}x {harness.number(stalls['gc_ms'].get(g, 0.0))} ms"
        for g in sorted(stalls["gc_collections"])
    )
    return (
        f"loop lag p50 {at_most(stalls['loop_lag_p50_ms'])} ms, p99 {at_most(stalls['loop_lag_p99_ms'])} ms,"
        f" max {at_most(stalls['loop_lag_max_ms'])} ms, {stalls['loop_lag_over_10ms'] or 0:.1%} of ticks over 10 ms;"
        f" gc {collections or 'none'}"
    )


# -- the latency's parts, from the hub's trace ----------------------------------

PARTS = ("request", "wake", "read", "dispatch", "outboxes", "follower", "total")


def latency_parts(received: Received, measured_from: float, trace: dict[int, list[float]]) -> dict[str, dict]:
    """Per change sent after the warm-up and traced: p50/p99/max ms of each part
    (the module docstring), its last receipt being the change's."""
    sent_at: dict[int, float] = {}
    last: dict[int, float] = {}
    for seq, sent, at in zip(received.seqs, received.sent, received.received, strict=True):
        if sent >= measured_from:
            sent_at[seq] = sent
            last[seq] = max(at, last.get(seq, 0.0))
    parts: dict[str, list[float]] = {part: [] for part in PARTS}
    for seq, sent in sent_at.items():
        stages = trace.get(seq)
        if stages is None or not stages[6]:
            continue
        woken, read_from, read_to, dispatched, _first, last_sent, _sends = stages
        for part, value in zip(
            PARTS,
            (
                woken - sent,
                read_from - woken,
                read_to - read_from,
                dispatched - read_to,
                last_sent - dispatched,
                last[seq] - last_sent,
                last[seq] - sent,
            ),
            strict=True,
        ):
            parts[part].append(value)
    return {part: percentiles(values, scale=1000) | {"changes": len(values)} for part, values in parts.items()}


def parts_text(parts: dict[str, dict]) -> str:
    return "; ".join(
        f"{part} {harness.number(parts[part]['p50'])}/{harness.number(parts[part]['p99'])}" for part in PARTS
    )


def ontime_load(server: Server, admin_key: str, shipments: list[Shipment], scenario: Scenario, seconds: float) -> Load:
    """The writer, in a process of its own, for `seconds`."""
    args = (server.url, admin_key, shipments, scenario.rate, seconds, scenario.batch)
    with spawned(live_clients.write, *args) as pipe:
        written: live_clients.Written = pipe.recv()
    each = scenario.batch  # one stamp for all the events of a request
    sent, answered = array("d", written.sent), array("d", written.answered)
    return Load(
        array("d", (t for t in sent for _ in range(each))),
        array("d", (t for t in answered for _ in range(each))),
        len(sent) / written.seconds,
        written.statuses,
    )


def floor_load(floor: Floor, frames: list[str], scenario: Scenario, seconds: float) -> Load:
    sent = floor.broadcast(frames, scenario.rate, seconds, scenario.batch)
    return Load(sent, sent)


# -- memory --------------------------------------------------------------------


def measure_memory(server: Server | Floor, tokens: list[str]) -> Figure:
    """The server's RSS per connection, before and after `tokens` idle
    connections, with a few connections open throughout so that first-use costs
    fall before."""
    with followers(server.live_url, tokens[:MEMORY_WARM_CONNECTIONS], 1) as stop_warm:
        time.sleep(1)
        before = rss_kib(server.pid)
        with followers(server.live_url, tokens, MEMORY_PROCESSES) as stop:
            time.sleep(3)  # let the server settle
            after = rss_kib(server.pid)
            stop()
        stop_warm()
    per_connection = (after - before) / len(tokens)
    say(f"    {per_connection:.1f} KiB a connection")
    return figure(
        per_connection,
        detail=f"RSS {before:,} -> {after:,} KiB",
        connections=len(tokens),
        rss_before_kib=before,
        rss_after_kib=after,
    )


# -- the run -------------------------------------------------------------------


def measure(options: argparse.Namespace) -> Result:
    seconds = WARMUP + options.seconds
    admin_key = harness.admin_key()
    plan = scenarios(options.batch, options.scale)
    ontime, floor, frames = {}, {}, {}
    memory_connections = round(MEMORY_CONNECTIONS * options.scale)

    received: dict[str, Received] = {}
    trace_dir = tempfile.TemporaryDirectory(prefix="ontime-live-trace-")
    trace_path = f"{trace_dir.name}/trace.json"

    with harness.fresh_database("live") as database_url, trace_dir:
        env = harness.server_env(database_url, admin_key)
        with harness.serving(env | {"ONTIME_LIVE_TRACE": trace_path}, harness.ontime()) as [server]:
            say("making accounts, keys and shipments")
            accounts = asyncio.run(make_accounts(server.url, admin_key, plan[0].accounts + 1))
            groups = {"a": accounts[:-1], "b": accounts[-1:]}
            for scenario in plan:
                say(f"({scenario.name}) ontime: {scenario.title}, {scenario.batch} event(s) a request")
                group = groups[scenario.name]
                tokens = spread([a.key for a in group], scenario.connections)
                load = functools.partial(ontime_load, server, admin_key, round_robin(group), scenario, seconds)
                ontime[scenario.name], received[scenario.name] = measure_latency(
                    scenario, server, tokens, load, database_url
                )
                samples = received[scenario.name].samples
                frames[scenario.name] = [samples[seq] for seq in sorted(samples)]
        # the hub writes its trace as the server stops
        trace = {int(seq): stages for seq, stages in msgspec.json.decode(Path(trace_path).read_bytes()).items()}
        parts = {}
        for scenario in plan:
            measured_from = min(received[scenario.name].sent, default=0.0) + WARMUP
            parts[scenario.name] = latency_parts(received[scenario.name], measured_from, trace)
            ontime[scenario.name].data["parts_ms"] = parts[scenario.name]
            say(f"({scenario.name}) parts p50/p99 ms: {parts_text(parts[scenario.name])}")

        with floor_server() as live_floor_server:
            for scenario in plan:
                say(f"({scenario.name}) floor: {scenario.title}")
                tokens = spread([a.id for a in groups[scenario.name]], scenario.connections)
                load = functools.partial(floor_load, live_floor_server, frames[scenario.name], scenario, seconds)
                floor[scenario.name], _ = measure_latency(scenario, live_floor_server, tokens, load, database_url)

        memory = {}
        servers = (
            ("ontime", functools.partial(fresh_ontime, env), lambda account: account.key),
            ("floor", floor_server, lambda account: account.id),
        )
        for name, start, token_of in servers:
            say(f"memory: {memory_connections} idle connections to a fresh {name} process")
            with start() as fresh:
                memory[name] = measure_memory(fresh, spread([token_of(a) for a in groups["a"]], memory_connections))

    rows = [
        Row(
            f"({s.name}) {s.title}: commit to receipt, p99",
            "ms",
            ontime[s.name],
            floor[s.name],
            Aim(max_value=s.aim_p99_ms),
            (
                f"from the POST's answer (lower bound): p50 {harness.number(ontime[s.name].data['after_commit_p50_ms'])} ms,"
                f" p99 {harness.number(ontime[s.name].data['after_commit_p99_ms'])} ms;"
                f" {ontime[s.name].data['requests_per_second']:.0f} requests/s, statuses {ontime[s.name].data['statuses']};"
                f" closed under load: {ontime[s.name].data['closes'] or 'none'}",
                f"the latency's parts, per change, p50/p99 ms: {parts_text(parts[s.name])}",
            ),
        )
        for s in plan
    ]
    rows.append(
        Row(
            f"RSS per idle connection ({memory_connections:,})",
            "KiB",
            memory["ontime"],
            memory["floor"],
            Aim(max_value=MEMORY_AIM_KIB),
        )
    )
    details = {"scenarios": [asdict(s) for s in plan], "warmup": WARMUP}
    return Result(rows, details=details)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds of load per scenario")
    parser.add_argument("--batch", type=int, default=10, help="events a request in (a) (1: one each)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the connections, and of (a)'s accounts and rate"
    )


BENCHMARK = Benchmark("live", __doc__, options, {"seconds": 2.0, "scale": 0.05}, measure)


def main(argv: list[str] | None = None) -> None:
    harness.main(BENCHMARK, argv)


if __name__ == "__main__":
    main()
