"""Webhooks end to end: a real HTTP receiver on loopback (ONTIME_WEBHOOK_ALLOW_PRIVATE),
the app's own delivery worker, real PostgreSQL. Signatures, order, retries,
a restart between a failure and its retry, replay, a slow receiver beside a
fast one, a poison row, and an endpoint disabled after its retry window."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import pytest

from api.shell.settings import Settings
from api.webhooks.signing import verify
from tests.integration.conftest import ADMIN_SECRET, Api, problem, running, shipment_body


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def change(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server in a thread: records each POST; answers `fail_first` of them
    with 500, and waits `delay` seconds before answering."""

    fail_first: int = 0
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    answered: int = 0
    url: str = ""

    def ok(self) -> list[Received]:
        return [r for r in self.received if r.headers.get("x-answered") == "200"]


@pytest.fixture
def receivers() -> Iterator[callable]:
    servers: list[ThreadingHTTPServer] = []

    def start(**kwargs) -> Receiver:
        receiver = Receiver(**kwargs)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                with lock:
                    receiver.answered += 1
                    status = 500 if receiver.answered <= receiver.fail_first else 200
                    headers = {k.lower(): v for k, v in self.headers.items()} | {"x-answered": str(status)}
                    receiver.received.append(Received(headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass  # quiet: the test reads what was received

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def settings(**overrides) -> Settings:
    values = {
        "bootstrap_admin_key": ADMIN_SECRET,
        "pool_min_size": 1,
        "pool_max_size": 5,
        "deadline_poll_seconds": 3600,
        "webhook_allow_private": True,
        "webhook_first_retry_seconds": 0.1,
        "webhook_poll_seconds": 0.1,
        "webhook_timeout_seconds": 5.0,
    }
    return Settings(**(values | overrides))


async def until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def hook(customer, receiver: Receiver, **body) -> dict:
    r = await customer.post("/v1/webhooks", json={"url": receiver.url, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_change_is_delivered_signed_with_the_endpoints_secret(database_url: str, receivers):
    receiver = receivers()
    async with running(database_url, settings()) as api:
        _, customer = await api.customer()
        created = await hook(customer, receiver)
        assert created["secret"].startswith("whsec_")
        listed = (await customer.get("/v1/webhooks")).json()["items"]
        assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]

        shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
        await until(lambda: receiver.ok(), what="the delivery")
        got = receiver.ok()[0]
        assert got.change["type"] == "created" and got.change["shipment"]["id"] == shipment["id"]
        assert got.headers["ontime-seq"] == str(got.change["seq"])
        assert got.headers["ontime-delivery"].startswith("dlv_")
        timestamp = int(got.headers["ontime-timestamp"])
        assert abs(timestamp - time.time()) < 60
        assert verify(created["secret"], timestamp, got.body, got.headers["ontime-signature"])
        assert not verify("whsec_other", timestamp, got.body, got.headers["ontime-signature"])

        log = (await customer.get(f"/v1/webhooks/{created['id']}/deliveries")).json()["items"]
        assert [(d["seq"], d["attempts"], d["last_status"]) for d in log] == [(got.change["seq"], 1, 200)]
        assert log[0]["id"] == got.headers["ontime-delivery"] and log[0]["delivered_at"] is not None


async def test_a_receiver_that_fails_three_times_gets_every_change_in_order(database_url: str, receivers):
    receiver = receivers(fail_first=3)
    async with running(database_url, settings()) as api:
        _, customer = await api.customer()
        endpoint = await hook(customer, receiver)
        shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
        for n, status in enumerate(("in_transit", "in_transit", "out_for_delivery")):
            r = await customer.post(
                f"/v1/shipments/{shipment['id']}/events",
                json={"status": status, "occurred_at": f"2029-12-0{n + 1}T10:00:00Z"},
            )
            assert r.status_code == 201, r.text
        await until(lambda: len(receiver.ok()) == 4, what="four deliveries")
        seqs = [r.change["seq"] for r in receiver.ok()]
        assert seqs == sorted(seqs) and len(set(seqs)) == 4
        # the three failures were the first change, tried again with the same delivery id
        first = [r for r in receiver.received if r.change["seq"] == seqs[0]]
        assert [r.headers["x-answered"] for r in first] == ["500", "500", "500", "200"]
        assert len({r.headers["ontime-delivery"] for r in first}) == 1
        log = (await customer.get(f"/v1/webhooks/{endpoint['id']}/deliveries")).json()["items"]
        assert [d["attempts"] for d in log] == [1, 1, 1, 4]
        state = (await customer.get(f"/v1/webhooks/{endpoint['id']}")).json()
        assert (state["failing_since"], state["failed_attempts"], state["delivered_seq"]) == (None, 0, seqs[-1])


async def test_a_restart_between_a_failure_and_its_retry_loses_nothing(
    database_url: str, receivers, pool: asyncpg.Pool
):
    receiver = receivers(fail_first=1000)
    # a long first wait: the first process never retries
    async with running(database_url, settings(webhook_first_retry_seconds=3600)) as api:
        _, customer = await api.customer()
        endpoint = await hook(customer, receiver)
        await customer.post("/v1/shipments", json=shipment_body())
        await until(lambda: receiver.received, what="the first attempt")
    assert await pool.fetchval("select attempts from webhook_endpoints where id = $1", endpoint["id"]) == 1
    receiver.fail_first = 0
    # what was due is still due: the retry's time is moved up, as if the wait had passed
    await pool.execute("update webhook_endpoints set next_attempt_at = now() where id = $1", endpoint["id"])
    async with running(database_url, settings()) as api:
        await until(lambda: receiver.ok(), what="the retry after the restart")
    assert [r.change["type"] for r in receiver.ok()] == ["created"]
    assert receiver.ok()[0].headers["ontime-delivery"] == receiver.received[0].headers["ontime-delivery"]


async def test_replay_delivers_again_after_a_seq_with_new_delivery_ids(database_url: str, receivers):
    receiver = receivers()
    async with running(database_url, settings()) as api:
        _, customer = await api.customer()
        endpoint = await hook(customer, receiver)
        for _ in range(3):
            await customer.post("/v1/shipments", json=shipment_body())
        await until(lambda: len(receiver.ok()) == 3, what="three deliveries")
        seqs = [r.change["seq"] for r in receiver.ok()]
        r = await customer.post(f"/v1/webhooks/{endpoint['id']}/replay", params={"since": seqs[0]})
        assert r.status_code == 200, r.text
        await until(lambda: len(receiver.ok()) == 5, what="the replay")
        again = receiver.ok()[3:]
        assert [r.change["seq"] for r in again] == seqs[1:]
        first_ids = {r.headers["ontime-delivery"] for r in receiver.ok()[:3]}
        assert not first_ids & {r.headers["ontime-delivery"] for r in again}


async def test_a_slow_receiver_does_not_hold_up_another_endpoint(database_url: str, receivers):
    slow, fast = receivers(delay=3.0), receivers()
    async with running(database_url, settings()) as api:
        _, customer = await api.customer()
        await hook(customer, slow)
        await hook(customer, fast)
        started = time.monotonic()
        await customer.post("/v1/shipments", json=shipment_body())
        await until(lambda: fast.ok(), timeout=2.5, what="the fast receiver")
        assert time.monotonic() - started < 2.5 and not slow.received
        await until(lambda: slow.ok(), what="the slow receiver")


async def test_kinds_and_late_only_filter_what_an_endpoint_gets(database_url: str, receivers):
    events_only, late_only = receivers(), receivers()
    async with running(database_url, settings()) as api:
        _, customer = await api.customer()
        await hook(customer, events_only, kinds=["event"])
        await hook(customer, late_only, late_only=True)
        shipment = (await customer.post("/v1/shipments", json=shipment_body(promised_by="2026-01-10T18:00:00Z"))).json()
        await customer.post(
            f"/v1/shipments/{shipment['id']}/events",
            json={"status": "delivered", "occurred_at": "2026-01-12T10:00:00Z"},
        )
        await until(
            lambda: events_only.ok() and "late" in {r.change["type"] for r in late_only.ok()},
            what="the filtered deliveries",
        )
        assert [r.change["type"] for r in events_only.ok()] == ["event"]
        assert "late" in {r.change["type"] for r in late_only.ok()}
        assert all(r.change.get("shipment", {}).get("late") or r.change["type"] == "late" for r in late_only.ok())


async def test_a_change_that_cannot_be_delivered_sets_its_endpoint_aside_and_the_others_go_on(
    database_url: str, receivers, pool: asyncpg.Pool
):
    poisoned, healthy = receivers(), receivers()
    async with running(database_url, settings()) as api:
        bad_account, bad = await api.customer("Odd data")
        _, good = await api.customer("Fine")
        bad_hook = await hook(bad, poisoned)
        await hook(good, healthy)
        # a change whose body is not JSON: the delivery cannot be built
        await pool.execute(
            "select append_changes(array[$1], array[null], array['created'], array[$2::bytea])", bad_account, b"\xff{"
        )
        await good.post("/v1/shipments", json=shipment_body())
        await until(lambda: healthy.ok(), what="the healthy endpoint's delivery")
        row = await pool.fetchrow("select loop, error from set_aside where row_id = $1", bad_hook["id"])
        assert row is not None and row["loop"] == "webhooks"
        assert not poisoned.received
        metrics = (await api.client.get("/metrics")).text
        assert 'ontime_rows_set_aside_total{loop="webhooks"} 1.0' in metrics


async def test_an_endpoint_failing_for_its_whole_window_is_disabled_and_the_account_told(database_url: str, receivers):
    receiver = receivers(fail_first=10_000)
    async with running(database_url, settings(webhook_retry_hours=1 / 3600)) as api:  # one second
        _, customer = await api.customer()
        endpoint = await hook(customer, receiver)
        await customer.post("/v1/shipments", json=shipment_body())

        async def disabled() -> dict:
            return (await customer.get(f"/v1/webhooks/{endpoint['id']}")).json()

        deadline = time.monotonic() + 10
        while (state := await disabled())["disabled_at"] is None:
            assert time.monotonic() < deadline, "never disabled"
            await asyncio.sleep(0.1)
        assert state["failing_since"] is not None and "HTTP 500" in state["last_error"]
        feed = (await customer.get("/v1/changes")).json()["items"]
        told = [c for c in feed if c["type"] == "webhook_disabled"]
        assert [c["webhook_id"] for c in told] == [endpoint["id"]]
        tried = len(receiver.received)
        await asyncio.sleep(0.5)
        assert len(receiver.received) == tried  # disabled: no more attempts


async def test_bad_webhook_bodies_are_400s_naming_the_field(api_with_private: Api):
    _, customer = await api_with_private.customer()
    for body, path in [
        ({}, "$.url"),
        ({"url": "ftp://example.com/x"}, "$.url"),
        ({"url": "http://127.0.0.1/x", "kinds": ["nope"]}, "$.kinds[0]"),
        ({"url": "http://127.0.0.1/x", "extra": 1}, "$.extra"),
    ]:
        r = await customer.post("/v1/webhooks", json=body)
        assert r.status_code == 400, (body, r.text)
        assert [e["path"] for e in problem(r)["errors"]] == [path], body
    admin_without_account = await api_with_private.admin.post("/v1/webhooks", json={"url": "http://127.0.0.1/x"})
    assert problem(admin_without_account)["errors"][0]["path"] == "$.account_id"


@pytest.fixture
async def api_with_private(database_url: str):
    async with running(database_url, settings()) as api:
        yield api


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",  # a name resolving to loopback
        "http://example.com/hook",  # not https
    ],
)
async def test_without_the_setting_private_addresses_and_plain_http_are_refused(api: Api, pool: asyncpg.Pool, url: str):
    _, customer = await api.customer()
    r = await customer.post("/v1/webhooks", json={"url": url})
    assert r.status_code == 400, r.text
    assert [e["path"] for e in problem(r)["errors"]] == ["$.url"]
    assert await pool.fetchval("select count(*) from webhook_endpoints") == 0


async def test_other_roles_and_accounts_see_no_webhooks(database_url: str, receivers):
    receiver = receivers()
    async with running(database_url, settings()) as api:
        _, customer = await api.customer()
        created = await hook(customer, receiver)
        _, other = await api.customer("Other")
        for client in (other, await api.role("carrier", carrier="dhl"), await api.role("support")):
            assert (await client.get(f"/v1/webhooks/{created['id']}")).status_code == 404
            assert (await client.delete(f"/v1/webhooks/{created['id']}")).status_code == 404
        rotated = await customer.post(f"/v1/webhooks/{created['id']}/rotate", json={"grace_seconds": 60})
        assert rotated.status_code == 200 and rotated.json()["secret"] != created["secret"]
        assert (await customer.delete(f"/v1/webhooks/{created['id']}")).status_code == 204
        assert (await customer.get(f"/v1/webhooks/{created['id']}")).status_code == 404


async def test_during_a_rotation_both_secrets_sign(database_url: str, receivers):
    receiver = receivers()
    async with running(database_url, settings()) as api:
        _, customer = await api.customer()
        created = await hook(customer, receiver)
        new = (await customer.post(f"/v1/webhooks/{created['id']}/rotate", json={})).json()["secret"]
        await customer.post("/v1/shipments", json=shipment_body())
        await until(lambda: receiver.ok(), what="the delivery")
        got = receiver.ok()[0]
        stamp = int(got.headers["ontime-timestamp"])
        assert verify(created["secret"], stamp, got.body, got.headers["ontime-signature"])
        assert verify(new, stamp, got.body, got.headers["ontime-signature"])


async def test_two_processes_deliver_each_change_once_between_them(database_url: str, receivers):
    receiver = receivers(delay=0.02)
    async with running(database_url, settings()) as first, running(database_url, settings()) as second:
        _, customer = await first.customer()
        endpoints = [await hook(customer, receiver) for _ in range(4)]
        other = second.as_key(customer.headers["Authorization"].removeprefix("Bearer "))
        for n in range(10):
            await (customer if n % 2 else other).post("/v1/shipments", json=shipment_body())
        await until(lambda: len(receiver.ok()) == 40, what="forty deliveries")
        await asyncio.sleep(0.5)  # anything sent twice would have arrived by now
    # four endpoints, ten changes: forty deliveries, none twice (each its own delivery id)
    assert len(endpoints) == 4 and len(receiver.received) == 40
    assert len({r.headers["ontime-delivery"] for r in receiver.received}) == 40
    seqs = Counter(r.change["seq"] for r in receiver.received)
    assert len(seqs) == 10 and set(seqs.values()) == {4}
