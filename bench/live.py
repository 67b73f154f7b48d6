"""The live feed's benchmark: `python -m bench.live [--seconds N] [--batch N]`.

Latency from commit to receipt, in two shapes of load:
  (a) 2,000 connections over 200 accounts (10 each), 500 changes/s;
  (b) 1,000 connections on one account, 20 changes/s;
each against a floor measured in the same run: a bare `websockets` server
broadcasting the same frames (real change messages from the ontime run) at the
same rate with the same fan-out (bench/live_floor.py). Then the resident memory
of one ontime process per idle connection, 10,000 of them, each subscribed to
"all" of its account, against the same for the floor.

`ontime serve` runs as a subprocess on a fresh database (made on the server at
DATABASE_URL, else on an embedded PostgreSQL in a temporary directory). The
followers and the writer run in processes of their own (bench/live_clients.py).

The latency is an upper bound: it starts when the writer sends the request, so
it includes the request's own work before the commit; the floor's starts at the
broadcast. A lower bound is reported beside it: from the response (the commit
came before it). Every receipt counts: in (a) each change reaches 10 followers.
In (a) the writer sends `--batch` events per request to the batch endpoint, as
one request per change did not reach 500/s on a 2-core machine; `--batch 1`
sends one event per request.

It reports; it asserts nothing. The figures also go to bench/out/live.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing
import os
import secrets
import subprocess
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench import live_clients, live_floor
from bench.live_clients import Shipment
from bench.support import free_port, fresh_database, say, wait_until_ready

OUT = Path(__file__).resolve().parent / "out" / "live.json"
WARMUP = 1.0  # seconds of load before receipts count
GRACE = 1.0  # seconds after the last change for the stragglers
FOLLOWER_PROCESSES = 2
MEMORY_CONNECTIONS = 10_000
MEMORY_PROCESSES = 4  # the fd limit is 20,000 a process; 2,500 connections each
MEMORY_WARM_CONNECTIONS = 20
SHIPMENTS_PER_ACCOUNT = 5
SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    connections: int
    accounts: int
    rate: float  # changes a second
    batch: int  # events a request
    aim_p99_ms: float

    @property
    def fan_out(self) -> float:
        return self.connections / self.accounts


def scenarios(batch: int) -> tuple[Scenario, Scenario]:
    return (
        Scenario("a", "2,000 conns / 200 accounts, 500 changes/s", 2000, 200, 500.0, batch, 50.0),
        Scenario("b", "1,000 conns / 1 account, 20 changes/s", 1000, 1, 20.0, 1, 100.0),
    )


# -- the database and the servers ----------------------------------------------


@dataclass(frozen=True)
class Server:
    pid: int
    base_url: str  # http://…, for the setup and the writer
    live_url: str  # ws://…, for the followers
    # the floor's: broadcast(frames, rate, seconds, batch) -> when each frame went out
    broadcast: Callable[[list[str], float, float, int], array] | None = None


@contextlib.contextmanager
def ontime_server(database_url: str, admin_key: str) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "ONTIME_BOOTSTRAP_ADMIN_KEY": admin_key}
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(process, base_url)
        yield Server(process.pid, base_url, f"ws://127.0.0.1:{port}/v1/live")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def floor_server() -> Iterator[Server]:
    """The bare websockets server (bench/live_floor.py) in a process of its own."""
    port = free_port()
    parent, child = SPAWN.Pipe()
    process = SPAWN.Process(target=live_floor.run, args=(port, child), daemon=True)
    process.start()
    try:
        _, pid = parent.recv()

        def broadcast(frames: list[str], rate: float, seconds: float, batch: int) -> array:
            parent.send(("broadcast", frames, rate, seconds, batch))
            return array("d", parent.recv())

        yield Server(pid, "", f"ws://127.0.0.1:{port}/", broadcast)
    finally:
        parent.send(("stop",))
        process.join(10)
        if process.is_alive():
            process.kill()


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
                response = await http.post(path, json=body)
            response.raise_for_status()
            return response.json()

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
    samples: dict[int, str]  # frames by seq
    closes: Counter  # connections closed while following, by code
    cpu_seconds: float  # the followers', all processes


@contextlib.contextmanager
def followers(live_url: str, tokens: list[str], processes: int) -> Iterator[Callable[[], Received]]:
    """Processes holding one connection per token, subscribed to "all"; yields `stop()`."""
    pipes, workers = [], []
    for share in (tokens[i::processes] for i in range(processes)):
        parent, child = SPAWN.Pipe()
        worker = SPAWN.Process(target=live_clients.follow, args=(live_url, share, child), daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    try:
        opened, failures = 0, Counter()
        for pipe in pipes:
            _, count, failed = pipe.recv()
            opened += count
            failures.update(failed)
        say(f"    {opened}/{len(tokens)} connections subscribed" + (f"; failed: {dict(failures)}" if failures else ""))

        def stop() -> Received:
            received = Received(array("d"), array("d"), {}, Counter(), 0.0)
            for pipe in pipes:
                pipe.send("stop")
            for pipe in pipes:
                receipts: live_clients.Receipts = pipe.recv()
                received.sent.frombytes(receipts.sent)
                received.received.frombytes(receipts.received)
                received.samples.update(receipts.samples)
                received.closes.update(receipts.closes)
                received.cpu_seconds += receipts.cpu_seconds
            return received

        yield stop
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()


# -- latency -------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """For each change, when it was sent and when the sender knew it committed."""

    sent: array
    committed: array
    # the writer's, for ontime
    requests_per_second: float | None = None
    statuses: dict[int, int] | None = None


@dataclass
class Latency:
    p50_ms: float  # from sent to received: an upper bound
    p99_ms: float
    max_ms: float
    after_commit_p50_ms: float  # from the answer to received: a lower bound
    after_commit_p99_ms: float
    receipts: int
    expected: int  # changes sent after the warm-up times their fan-out
    changes_per_second: float
    closes: dict[int, int]  # connections closed under load, by close code
    server_cpu_busy: float  # the server process's CPU seconds a second
    server_cpu_wait: float  # and seconds a second it was ready to run but waited for a CPU
    server_cpu_us_per_receipt: float
    followers_cpu_busy: float
    requests_per_second: float | None  # the writer's, for ontime
    statuses: dict[int, int] | None


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def measure_latency(
    scenario: Scenario, server: Server, tokens: list[str], load: Callable[[], Load]
) -> tuple[Latency, dict[int, str]]:
    """Connect the followers, run `load()`, and take the latencies of the changes
    sent after the warm-up. Also gives the frames the followers kept, by seq."""
    with followers(server.live_url, tokens, FOLLOWER_PROCESSES) as stop:
        cpu_before, wait_before, started = cpu_seconds(server.pid), cpu_wait_seconds(server.pid), time.monotonic()
        sent = load()
        time.sleep(GRACE)
        elapsed = time.monotonic() - started
        cpu, wait = cpu_seconds(server.pid) - cpu_before, cpu_wait_seconds(server.pid) - wait_before
        received = stop()
    measured_from = sent.sent[0] + WARMUP
    committed_at = dict(zip(sent.sent, sent.committed, strict=False))
    counted = [(s, r) for s, r in zip(received.sent, received.received, strict=False) if s >= measured_from]
    upper = sorted(r - s for s, r in counted)
    lower = sorted(r - committed_at.get(s, s) for s, r in counted)
    measured = [s for s in sent.sent if s >= measured_from]
    latency = Latency(
        p50_ms=percentile(upper, 0.50),
        p99_ms=percentile(upper, 0.99),
        max_ms=percentile(upper, 1.0),
        after_commit_p50_ms=percentile(lower, 0.50),
        after_commit_p99_ms=percentile(lower, 0.99),
        receipts=len(counted),
        expected=round(len(measured) * scenario.fan_out),
        changes_per_second=(len(measured) - 1) / max(1e-9, measured[-1] - measured[0]) if measured else 0.0,
        closes=dict(received.closes),
        server_cpu_busy=cpu / elapsed,
        server_cpu_wait=wait / elapsed,
        server_cpu_us_per_receipt=cpu * 1e6 / max(1, len(received.sent)),
        followers_cpu_busy=received.cpu_seconds / elapsed,
        requests_per_second=sent.requests_per_second,
        statuses=sent.statuses,
    )
    return latency, received.samples


def ontime_load(server: Server, admin_key: str, shipments: list[Shipment], scenario: Scenario, seconds: float) -> Load:
    """The writer, in a process of its own, for `seconds`."""
    parent, child = SPAWN.Pipe()
    args = (server.base_url, admin_key, shipments, scenario.rate, seconds, scenario.batch, child)
    writer = SPAWN.Process(target=live_clients.write, args=args, daemon=True)
    writer.start()
    written: live_clients.Written = parent.recv()
    writer.join()
    each = scenario.batch  # one stamp for all the events of a request
    sent, answered = array("d", written.sent), array("d", written.answered)
    return Load(
        array("d", (t for t in sent for _ in range(each))),
        array("d", (t for t in answered for _ in range(each))),
        len(sent) / written.seconds,
        written.statuses,
    )


def floor_load(floor: Server, frames: list[str], scenario: Scenario, seconds: float) -> Load:
    sent = floor.broadcast(frames, scenario.rate, seconds, scenario.batch)
    return Load(sent, sent)


# -- the server process: CPU and memory ----------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_wait_seconds(pid: int) -> float:
    """Time the process's threads were ready to run but waited for a CPU: how busy the machine was."""
    return (
        sum(int(Path(task, "schedstat").read_text().split()[1]) for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    )


def rss_kib(pid: int) -> int:
    """Resident memory of a process now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@dataclass
class Memory:
    connections: int
    rss_before_kib: int
    rss_after_kib: int
    per_connection_kib: float


def measure_memory(server: Server, tokens: list[str]) -> Memory:
    """The server's RSS before and after `tokens` idle connections, with a few
    connections open throughout so that first-use costs fall before."""
    with followers(server.live_url, tokens[:MEMORY_WARM_CONNECTIONS], 1) as stop_warm:
        time.sleep(1)
        before = rss_kib(server.pid)
        with followers(server.live_url, tokens, MEMORY_PROCESSES) as stop:
            time.sleep(3)  # let the server settle
            after = rss_kib(server.pid)
            stop()
        stop_warm()
    return Memory(len(tokens), before, after, (after - before) / len(tokens))


# -- the run -------------------------------------------------------------------


def say_latency(latency: Latency) -> None:
    say(
        f"    p50 {latency.p50_ms:.1f} ms, p99 {latency.p99_ms:.1f} ms;"
        f" {latency.receipts}/{latency.expected} receipts of {latency.changes_per_second:.0f} changes/s;"
        f" server CPU {latency.server_cpu_busy:.0%} busy, {latency.server_cpu_wait:.0%} waiting,"
        f" {latency.server_cpu_us_per_receipt:.0f} µs a receipt"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds of load per run (default 20)")
    parser.add_argument("--batch", type=int, default=10, help="events a request in (a) (default 10; 1: one each)")
    args = parser.parse_args()
    seconds = WARMUP + args.seconds
    admin_key = f"bench-admin-{secrets.token_hex(16)}"
    plan = scenarios(args.batch)
    results: dict[str, dict] = {s.name: {"scenario": asdict(s)} for s in plan}
    frames: dict[str, list[str]] = {}

    with fresh_database("live") as database_url:
        with ontime_server(database_url, admin_key) as server:
            say("making accounts, keys and shipments")
            accounts = asyncio.run(make_accounts(server.base_url, admin_key, 201))
            groups = {"a": accounts[:200], "b": accounts[200:]}
            for scenario in plan:
                say(f"({scenario.name}) ontime: {scenario.title}, {scenario.batch} event(s) a request")
                group = groups[scenario.name]
                tokens = spread([a.key for a in group], scenario.connections)
                shipments = round_robin(group)
                latency, samples = measure_latency(
                    scenario,
                    server,
                    tokens,
                    functools.partial(ontime_load, server, admin_key, shipments, scenario, seconds),
                )
                say_latency(latency)
                frames[scenario.name] = [samples[seq] for seq in sorted(samples)]
                results[scenario.name]["ontime"] = asdict(latency)

        with floor_server() as floor:
            for scenario in plan:
                say(f"({scenario.name}) floor: {scenario.title}")
                tokens = spread([a.id for a in groups[scenario.name]], scenario.connections)
                replay = frames[scenario.name]
                latency, _ = measure_latency(
                    scenario, floor, tokens, functools.partial(floor_load, floor, replay, scenario, seconds)
                )
                say_latency(latency)
                results[scenario.name]["floor"] = asdict(latency)

        results["memory"] = {"aim_kib": 30.0}
        servers = (
            ("ontime", lambda: ontime_server(database_url, admin_key), lambda account: account.key),
            ("floor", floor_server, lambda account: account.id),
        )
        for name, start, token_of in servers:
            say(f"memory: {MEMORY_CONNECTIONS} idle connections to a fresh {name} process")
            with start() as server:
                tokens = spread([token_of(a) for a in groups["a"]], MEMORY_CONNECTIONS)
                memory = measure_memory(server, tokens)
            say(f"    {memory.per_connection_kib:.1f} KiB a connection")
            results["memory"][name] = asdict(memory)

    results["run"] = {"seconds": args.seconds, "warmup": WARMUP, "cpus": os.cpu_count()}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print_table(plan, results)
    say(f"wrote {OUT}")


def print_table(plan: tuple[Scenario, ...], results: dict) -> None:
    row = "{:<44} {:>9} {:>9} {:>10} {:>10} {:>10} {:>9}"
    print()
    print(row.format("scenario", "p50", "p99", "floor p50", "floor p99", "p99/floor", "aim"))
    for scenario in plan:
        ontime, floor = results[scenario.name]["ontime"], results[scenario.name]["floor"]
        print(
            row.format(
                f"({scenario.name}) {scenario.title}",
                f"{ontime['p50_ms']:.1f} ms",
                f"{ontime['p99_ms']:.1f} ms",
                f"{floor['p50_ms']:.1f} ms",
                f"{floor['p99_ms']:.1f} ms",
                f"{ontime['p99_ms'] / floor['p99_ms']:.1f}x",
                f"< {scenario.aim_p99_ms:.0f} ms",
            )
        )
    memory = results["memory"]
    ontime_kib, floor_kib = memory["ontime"]["per_connection_kib"], memory["floor"]["per_connection_kib"]
    print(
        row.format(
            f"RSS per idle connection ({MEMORY_CONNECTIONS:,})",
            f"{ontime_kib:.1f} KiB",
            "",
            "",
            f"{floor_kib:.1f} KiB",
            f"{ontime_kib / floor_kib:.1f}x",
            f"< {memory['aim_kib']:.0f} KiB",
        )
    )
    print()
    for scenario in plan:
        r = results[scenario.name]
        ontime, floor = r["ontime"], r["floor"]
        print(
            f"({scenario.name}) from the POST's answer (lower bound): p50 {ontime['after_commit_p50_ms']:.1f} ms,"
            f" p99 {ontime['after_commit_p99_ms']:.1f} ms. {ontime['changes_per_second']:.0f} changes/s"
            f" ({ontime['requests_per_second']:.0f} requests/s, statuses {ontime['statuses']})."
            f" Receipts {ontime['receipts']}/{ontime['expected']}, floor {floor['receipts']}/{floor['expected']};"
            f" closed under load: {ontime['closes'] or 'none'}."
            f"\n    Server CPU {ontime['server_cpu_us_per_receipt']:.0f} µs a receipt"
            f" ({ontime['server_cpu_busy']:.0%} busy,"
            f" {ontime['server_cpu_wait']:.0%} waiting for a CPU), floor {floor['server_cpu_us_per_receipt']:.0f} µs"
            f" ({floor['server_cpu_busy']:.0%}, {floor['server_cpu_wait']:.0%});"
            f" followers {ontime['followers_cpu_busy']:.0%} busy (floor run {floor['followers_cpu_busy']:.0%})."
        )


if __name__ == "__main__":
    main()
