"""The core service against its floors, measured in one run: `python -m bench.core`.

Polling: `GET /v1/shipments/{id}` with a customer key, plain (200) and with
If-None-Match (304), against bench/floor_app.py, a bare Litestar handler doing
one primary-key fetch of the same row. The change feed: a page of 100 changes
after a cursor, `GET /v1/changes?after=N`, against a raw keyset query of the
same account's changes through the same floor app. Ingest: `POST /v1/events` in batches of
500 against raw asyncpg `executemany` of the same rows into `events`, from this
process. Both HTTP servers are one uvicorn process each with the same settings
and pool size, on the same fresh database; wrk, a process of its own, loads them.

It prints figures and ratios to the floors and asserts nothing: a benchmark
reports. The same table goes to bench/out/core.json (see bench/harness.py).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import msgspec

from api.shell.ids import new_id
from bench import harness
from bench.harness import FLOOR_APP, OUT_DIR, Aim, Benchmark, Figure, Result, Row, Server, call, figure, say, usage
from bench.wrk import Load, run_wrk

POLL_AIM = Aim(min_ratio=1.0)
CONDITIONAL_AIM = Aim(min_ratio=1.2)  # a 304 carries no body: it should cost less than the floor's fetch
INGEST_AIM = Aim(min_ratio=0.3, min_value=5_000)

# The ingest targets, made in SQL, and the event every batch item carries.
CARRIER = "benchpost"
TRACKING_PREFIX = "BENCH"
EVENT = {
    "status": "in_transit",
    "location": {"city": "Lyon", "country": "FR"},
    "description": "Departed sorting hub",
}
# One batch item as a format string, filled by bench/lua/ingest.lua's
# string.format and by Python's % alike, in this order: target number (1..N),
# run tag, thread id, batch number, index in the batch, occurred_at.
ITEM = msgspec.json.encode(
    {
        "carrier": CARRIER,
        "tracking_number": TRACKING_PREFIX + "%06d",
        "event_id": "%s-%d-%d-%d",
        "occurred_at": "%s",
        **EVENT,
    }
).decode()
# Each load run's events get occurred_at values of their own, later than the
# previous run's, so every event is the newest of its shipment and moves it.
# ("feed": the events that fill the change feed before it is read.)
RUN_TAGS = ("feed", "check", "warm", "run")
RUN_SPACING = timedelta(days=10)

INSERT_EVENT = """
insert into events (shipment_id, key, event_id, status, occurred_at, location,
                    description, reason, estimated_delivery, received_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""

INSERT_TARGETS = """
insert into shipments (id, account_id, carrier, tracking_number, promised_by, origin, destination)
select id, $3, $4, tracking_number, $5, $6, $7
from unnest($1::text[], $2::text[]) as t(id, tracking_number)
"""


# -- what the scenarios use ----------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    customer_key: str
    carrier_key: str
    shipment_id: str
    etag: str
    # ingest targets: targets[k - 1] has tracking number BENCH<k>
    targets: list[str]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def prepare(ontime: Server, admin_key: str, database_url: str, targets: int) -> Fixture:
    """An account with a customer and a carrier key, the polled shipment made
    through the API with a few events, and the ingest targets made in SQL."""
    async with httpx.AsyncClient(base_url=ontime.url) as http:
        account = await call(http, "POST", "/v1/accounts", {"name": "Bench"}, admin_key)
        keys = [{"role": "customer", "account_id": account["id"]}, {"role": "carrier", "carrier": CARRIER}]
        customer_key, carrier_key = [(await call(http, "POST", "/v1/keys", k, admin_key))["secret"] for k in keys]
        shipment_id = await create_polled_shipment(http, customer_key)
        polled = await http.get(f"/v1/shipments/{shipment_id}", headers=bearer(customer_key))
    targets_ids = await create_targets(database_url, account["id"], targets)
    return Fixture(customer_key, carrier_key, shipment_id, polled.headers["etag"], targets_ids)


async def create_polled_shipment(http: httpx.AsyncClient, key: str) -> str:
    now = datetime.now(UTC)
    shipment = {
        "carrier": "dhl",
        "tracking_number": "JD014600000000001",
        "reference": "order-8812",
        "promised_by": (now + timedelta(days=3)).isoformat(),
        "origin": {"city": "Zaragoza", "country": "ES", "postal_code": "50001"},
        "destination": {"city": "Lyon", "country": "FR", "postal_code": "69002"},
        "recipient": {"name": "Ana Ruiz", "email": "ana@example.com", "phone": "+34 600 000 000"},
    }
    shipment_id = (await call(http, "POST", "/v1/shipments", shipment, key))["id"]
    journey = [
        ("label_created", 30, {"city": "Zaragoza", "country": "ES"}),
        ("in_transit", 20, {"city": "Barcelona", "country": "ES"}),
        ("in_transit", 5, {"city": "Lyon", "country": "FR"}),
    ]
    events = [
        {
            "status": status,
            "occurred_at": (now - timedelta(hours=hours)).isoformat(),
            "event_id": f"e{n}",
            "location": place,
        }
        for n, (status, hours, place) in enumerate(journey)
    ]
    events[-1]["estimated_delivery"] = (now + timedelta(days=1)).isoformat()
    await call(http, "POST", f"/v1/shipments/{shipment_id}/events", events, key)
    return shipment_id


async def create_targets(database_url: str, account_id: str, count: int) -> list[str]:
    ids = [new_id("shp") for _ in range(count)]
    numbers = [f"{TRACKING_PREFIX}{k:06d}" for k in range(1, count + 1)]
    await harness.fetch(
        database_url,
        INSERT_TARGETS,
        ids,
        numbers,
        account_id,
        CARRIER,
        datetime.now(UTC) + timedelta(days=30),
        '{"city": "Zaragoza", "country": "ES"}',
        '{"city": "Lyon", "country": "FR"}',
    )
    return ids


# -- load ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSettings:
    seconds: int
    connections: int
    timeout_seconds: int = 10

    @property
    def warm_up_seconds(self) -> int:
        return min(3, max(1, self.seconds // 5))


async def warm_then_measure(
    label: str,
    server: Server,
    path: str,
    script: str,
    script_args: Callable[[str], list[str]],
    settings: LoadSettings,
    per: str,
    items_per_request: int = 1,
) -> tuple[Load, Figure]:
    """A short warm-up, then the measured run, with the server's CPU time per
    request (or item); script_args gets the run's tag."""

    async def load(tag: str, seconds: int) -> Load:
        return await run_wrk(
            server.url + path, script, script_args(tag), seconds=seconds,
            connections=settings.connections, timeout_seconds=settings.timeout_seconds,
        )  # fmt: skip

    say(f"{label}: warming up {settings.warm_up_seconds}s…")
    await load("warm", settings.warm_up_seconds)
    say(f"{label} {settings.seconds}s…")
    with usage(server.pid) as used:
        measured = await load("run", settings.seconds)
    (OUT_DIR / f"wrk-{label.replace(' ', '-')}.txt").write_text(measured.output)
    return measured, figure(
        measured.per_second * items_per_request,
        per=per,
        count=measured.answered * items_per_request,
        server=used,
        p50_ms=measured.p50_ms,
        p99_ms=measured.p99_ms,
        errors=measured.bad_status + measured.socket_errors,
        requests=measured.requests,
    )


async def expect_status(
    method: str, url: str, headers: dict[str, str], status: int, body: bytes | None = None
) -> httpx.Response:
    """One request before loading, so a wrong setup is not measured as a figure."""
    async with httpx.AsyncClient() as http:
        response = await http.request(method, url, headers=headers, content=body)
    if response.status_code != status:
        raise RuntimeError(f"{url}: expected {status}, got {response.status_code}: {response.text[:500]}")
    return response


# -- polling -------------------------------------------------------------------


async def poll(label: str, server: Server, fixture: Fixture, etag: str | None, settings: LoadSettings) -> Figure:
    path = f"/v1/shipments/{fixture.shipment_id}"
    args = [fixture.customer_key] + ([etag] if etag else [])
    headers = bearer(fixture.customer_key) | ({"If-None-Match": etag} if etag else {})
    await expect_status("GET", server.url + path, headers, 304 if etag else 200)
    _, measured = await warm_then_measure(label, server, path, "poll", lambda _tag: args, settings, "req")
    return measured


async def compare_polling(ontime: Server, floor: Server, fixture: Fixture, settings: LoadSettings) -> list[Row]:
    floor_load = await poll("polling floor", floor, fixture, None, settings)
    plain = await poll("polling ontime", ontime, fixture, None, settings)
    conditional = await poll("polling ontime 304", ontime, fixture, fixture.etag, settings)
    return [
        Row("GET /v1/shipments/{id} (200)", "req/s", plain, floor_load, POLL_AIM),
        Row("same, If-None-Match (304)", "req/s", conditional, floor_load, CONDITIONAL_AIM),
    ]


# -- ingest --------------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    """Where each batch item goes: batch n, item i addresses target
    (n * batch + i) mod targets, as bench/lua/ingest.lua does."""

    targets: list[str]
    batch: int
    first_occurred_at: datetime

    def occurred_at(self, tag: str, batch_number: int) -> datetime:
        return self.first_occurred_at + RUN_SPACING * RUN_TAGS.index(tag) + timedelta(seconds=batch_number)

    def target_number(self, batch_number: int, index: int) -> int:
        return (batch_number * self.batch + index) % len(self.targets) + 1

    def wrk_args(self, carrier_key: str, tag: str) -> list[str]:
        first = int(self.occurred_at(tag, 0).timestamp())
        return [carrier_key, tag, str(len(self.targets)), str(self.batch), str(first), ITEM]

    def body(self, tag: str, batch_number: int) -> bytes:
        occurred_at = self.occurred_at(tag, batch_number).strftime("%Y-%m-%dT%H:%M:%SZ")
        items = [
            ITEM % (self.target_number(batch_number, i), tag, 1, batch_number, i, occurred_at)
            for i in range(self.batch)
        ]
        return ("[" + ",".join(items) + "]").encode()

    def rows(self, batch_number: int) -> list[tuple]:
        """Batch n as the floor inserts it: the same columns and values as ontime stores."""
        occurred_at = self.occurred_at("run", batch_number)
        location = msgspec.json.encode(EVENT["location"]).decode()
        received_at = datetime.now(UTC)
        return [
            (
                self.targets[self.target_number(batch_number, i) - 1],
                f"floor-{batch_number}-{i}",
                f"floor-{batch_number}-{i}",
                EVENT["status"],
                occurred_at,
                location,
                EVENT["description"],
                None,
                None,
                received_at,
            )
            for i in range(self.batch)
        ]


async def ingest_ontime(
    ontime: Server, fixture: Fixture, ingest: Ingest, database_url: str, settings: LoadSettings
) -> tuple[Load, Figure, list[str]]:
    """wrk posting new batches; notes say what went wrong, if anything did."""
    headers = bearer(fixture.carrier_key) | {"Content-Type": "application/json"}
    check = await expect_status("POST", f"{ontime.url}/v1/events", headers, 200, ingest.body("check", 0))
    if check.json()["accepted"] != ingest.batch:
        raise RuntimeError(f"the check batch was not accepted whole: {check.text[:500]}")
    load, measured = await warm_then_measure(
        "ingest ontime",
        ontime,
        "/v1/events",
        "ingest",
        lambda tag: ingest.wrk_args(fixture.carrier_key, tag),
        settings,
        "event",
        ingest.batch,
    )
    [(stored,)] = await harness.fetch(database_url, "select count(*) from events where key like 'run-%'")
    sent = load.answered * ingest.batch
    notes = [f"answered batches held {sent} events but only {stored} were stored"] if stored < sent else []
    return load, measured, notes


async def ingest_floor(database_url: str, ingest: Ingest, events: int, connections: int) -> Figure:
    """Raw executemany of `events` rows, batch by batch, on `connections`
    connections of this process's own."""
    batches = [ingest.rows(n) for n in range(events // ingest.batch)]
    pool = await asyncpg.create_pool(database_url, min_size=connections, max_size=connections)
    try:
        queue = iter(batches)

        async def insert_batches() -> None:
            async with pool.acquire() as conn:
                for rows in queue:  # shared: each batch is taken by one worker
                    await conn.executemany(INSERT_EVENT, rows)

        started = time.perf_counter()
        await asyncio.gather(*(insert_batches() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return figure(len(batches) * ingest.batch / elapsed)


async def compare_ingest(
    ontime: Server, fixture: Fixture, database_url: str, batch: int, settings: LoadSettings
) -> Row:
    ingest = Ingest(fixture.targets, batch, first_occurred_at())
    load, measured, notes = await ingest_ontime(ontime, fixture, ingest, database_url, settings)
    events = max(load.answered, settings.connections) * batch
    say(f"ingest floor: the same {events:,} events by executemany…")
    floor = await ingest_floor(database_url, ingest, events, settings.connections)
    return Row(f"POST /v1/events ({batch}/batch)", "events/s", measured, floor, INGEST_AIM, tuple(notes))


# -- the change feed -----------------------------------------------------------

FEED_AIM = Aim(min_ratio=1.0)
FEED_PAGE = 100


def first_occurred_at() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - (len(RUN_TAGS) + 1) * RUN_SPACING


async def fill_feed(ontime: Server, fixture: Fixture, database_url: str, pages: int) -> tuple[str, int]:
    """Carrier events until the account's feed holds `pages` pages after its
    first change; the account and that cursor."""
    ingest = Ingest(fixture.targets, 50, first_occurred_at())
    headers = bearer(fixture.carrier_key) | {"Content-Type": "application/json"}
    query = "select account_id, min(seq), count(*) from changes where shipment_id = $1 group by account_id"
    [(account_id, first, _)] = await harness.fetch(database_url, query, fixture.shipment_id)
    count_query = "select count(*) from changes where account_id = $1 and seq > $2"
    async with httpx.AsyncClient(base_url=ontime.url, timeout=60) as http:
        for batch_number in range(1000):
            [(count,)] = await harness.fetch(database_url, count_query, account_id, first)
            if count > pages * FEED_PAGE:
                return account_id, first
            answer = await http.post("/v1/events", content=ingest.body("feed", batch_number), headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"filling the feed: {answer.status_code}: {answer.text[:500]}")
    raise RuntimeError("the change feed did not fill")


async def compare_feed(
    ontime: Server, floor: Server, fixture: Fixture, database_url: str, settings: LoadSettings
) -> Row:
    account_id, after = await fill_feed(ontime, fixture, database_url, pages=3)
    paths = {
        "ontime": f"/v1/changes?after={after}&limit={FEED_PAGE}",
        "floor": f"/v1/changes?account_id={account_id}&after={after}&limit={FEED_PAGE}",
    }
    measured = {}
    for name, server in (("floor", floor), ("ontime", ontime)):
        page = await expect_status("GET", server.url + paths[name], bearer(fixture.customer_key), 200)
        if len(page.json()["items"]) != FEED_PAGE:
            raise RuntimeError(f"{name}: a short page of the feed: {page.text[:300]}")
        args = [fixture.customer_key]
        _, measured[name] = await warm_then_measure(
            f"feed {name}", server, paths[name], "poll", lambda _tag, a=args: a, settings, "req"
        )
    return Row(f"GET /v1/changes ({FEED_PAGE} a page)", "req/s", measured["ontime"], measured["floor"], FEED_AIM)


# -- the run -------------------------------------------------------------------


def measure(options: argparse.Namespace) -> Result:
    poll_settings = LoadSettings(options.seconds, options.poll_connections)
    ingest_settings = LoadSettings(options.seconds, options.ingest_connections, timeout_seconds=60)
    admin_key = harness.admin_key()
    with harness.fresh_database("core") as database_url:
        say("starting servers…")
        env = harness.server_env(database_url, admin_key, options.pool_size)
        with harness.serving(env, harness.ontime(), FLOOR_APP) as (ontime, floor):
            say(f"creating an account, keys, the polled shipment and {options.targets:,} ingest targets…")

            async def scenarios() -> list[Row]:
                fixture = await prepare(ontime, admin_key, database_url, options.targets)
                rows: list[Row] = []
                if options.part in ("all", "poll"):
                    rows += await compare_polling(ontime, floor, fixture, poll_settings)
                    rows.append(await compare_feed(ontime, floor, fixture, database_url, poll_settings))
                if options.part in ("all", "ingest"):
                    rows.append(await compare_ingest(ontime, fixture, database_url, options.batch, ingest_settings))
                return rows

            rows = asyncio.run(scenarios())
            say("stopping servers…")
    return Result(rows)


def options(parser: argparse.ArgumentParser) -> None:
    option = parser.add_argument
    option("--seconds", type=int, default=10, help="length of each measured run")
    option("--poll-connections", type=int, default=32, help="wrk connections when polling")
    option("--ingest-connections", type=int, default=4, help="batches in flight when ingesting")
    option("--batch", type=int, default=500, help="events per ingest batch")
    option("--targets", type=int, default=5000, help="shipments the ingest events go to")
    option("--pool-size", type=int, default=10, help="database pool of each server")
    option("--part", choices=("all", "poll", "ingest"), default="all", help="polling and the feed, ingest, or both")


QUICK = {"seconds": 2, "poll_connections": 8, "batch": 50, "targets": 500}
BENCHMARK = Benchmark("core", __doc__, options, QUICK, measure, needs=("wrk",))


def main(argv: list[str] | None = None) -> None:
    harness.main(BENCHMARK, argv)


if __name__ == "__main__":
    main()
