"""The live feed over real sockets, across real server processes on one database."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import socket
import time

import asyncpg
import httpx
import pytest
import websockets

from api.live.listener import APPLICATION_NAME
from tests.e2e.conftest import Server, StartServers

CHANGE_TYPES = {"created", "event", "promise_revised", "late", "at_risk"}


class Live:
    """A dashboard's websocket: subscribe, then collect change messages."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, server: Server, secret: str, **connect) -> Live:
        url = server.url.replace("http", "ws") + "/v1/live"
        ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {secret}"}, **connect)
        return cls(ws)

    async def subscribe(self, shipments: list[str] | str = "all", since: int | None = None) -> dict:
        message: dict = {"type": "subscribe", "shipments": shipments}
        if since is not None:
            message["since"] = since
        await self.ws.send(json.dumps(message))
        return await self.until("subscribed")

    async def until(self, kind: str, timeout: float = 10.0) -> dict:
        """Skip change messages until a protocol message of `kind` (used right after subscribe)."""
        self.buffered: list[dict] = getattr(self, "buffered", [])
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == kind:
                return message
            if message["type"] in CHANGE_TYPES:
                self.buffered.append(message)

    async def changes(self, count: int, timeout: float = 10.0, kinds: frozenset[str] | None = None) -> list[dict]:
        """The next `count` changes (of `kinds` only, when given: others are let pass)."""
        wanted = CHANGE_TYPES if kinds is None else kinds
        received = [m for m in getattr(self, "buffered", []) if m["type"] in wanted]
        self.buffered = []
        deadline = time.monotonic() + timeout
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"got {len(received)} of {count} changes in {timeout} s")
            message = json.loads(await asyncio.wait_for(self.ws.recv(), remaining))
            if message["type"] in wanted:
                received.append(message)
        return received

    async def nothing_for(self, seconds: float) -> None:
        async def refuse_changes() -> None:
            while True:
                message = json.loads(await asyncio.wait_for(self.ws.recv(), seconds))
                assert message["type"] not in CHANGE_TYPES, message

        with pytest.raises(TimeoutError):
            await refuse_changes()

    async def close(self) -> None:
        await self.ws.close()


async def new_customer(server: Server) -> tuple[str, httpx.AsyncClient, str]:
    async with server.client() as admin:
        account = (await admin.post("/v1/accounts", json={"name": "Live"})).json()["id"]
        key = (await admin.post("/v1/keys", json={"role": "customer", "account_id": account})).json()
    return account, server.client(key["secret"]), key["secret"]


_numbers = iter(range(10**6))


async def new_shipment(client: httpx.AsyncClient) -> str:
    body = {"carrier": "dhl", "tracking_number": f"LV{next(_numbers):07d}", "promised_by": "2031-01-01T00:00:00Z"}
    r = await client.post("/v1/shipments", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def post_event(client: httpx.AsyncClient, shipment_id: str, n: int) -> None:
    r = await client.post(
        f"/v1/shipments/{shipment_id}/events",
        json={
            "status": "in_transit",
            "occurred_at": f"2030-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "event_id": f"e{n}",
        },
    )
    assert r.status_code == 201, r.text


async def test_a_change_posted_through_one_process_reaches_a_subscriber_on_the_other(two_servers: list[Server]):
    a, b = two_servers
    _, customer_a, secret = await new_customer(a)
    shipment = await new_shipment(customer_a)
    live = await Live.open(b, secret)
    try:
        await live.subscribe([shipment])
        await post_event(customer_a, shipment, 1)
        [change] = await live.changes(1, timeout=5)
        assert change["type"] == "event"
        assert change["shipment"]["id"] == shipment and change["shipment"]["status"] == "in_transit"
        assert change["event"]["event_id"] == "e1"
    finally:
        await live.close()
        await customer_a.aclose()


async def test_a_shipment_created_through_one_process_reaches_an_all_subscriber_on_the_other(
    two_servers: list[Server],
):
    a, b = two_servers
    _, customer, secret = await new_customer(a)
    live = await Live.open(b, secret)
    try:
        await live.subscribe("all")
        shipment = await new_shipment(customer)
        [change] = await live.changes(1, timeout=5)
        assert change["type"] == "created"
        assert change["shipment"]["id"] == shipment and change["shipment"]["status"] == "label_created"
        assert "recipient" not in change["shipment"]
        assert change["seq"] == (await customer.get("/v1/changes")).json()["items"][0]["seq"]
        await live.nothing_for(0.5)
    finally:
        await live.close()
        await customer.aclose()


async def test_a_reconnect_with_since_replays_exactly_what_was_missed_then_goes_live(two_servers: list[Server]):
    a, b = two_servers
    _, customer, secret = await new_customer(a)
    shipment = await new_shipment(customer)
    live = await Live.open(b, secret)
    await live.subscribe("all")
    await post_event(customer, shipment, 0)
    [seen] = await live.changes(1)
    await live.close()

    for n in range(1, 31):
        await post_event(customer, shipment, n)

    again = await Live.open(a, secret)
    try:
        await again.subscribe("all", since=seen["seq"])
        replayed = await again.changes(30)
        assert [c["event"]["event_id"] for c in replayed] == [f"e{n}" for n in range(1, 31)]
        seqs = [c["seq"] for c in replayed]
        assert seqs == sorted(set(seqs)) and seqs[0] > seen["seq"]
        await post_event(customer, shipment, 31)
        [live_one] = await again.changes(1)
        assert live_one["event"]["event_id"] == "e31" and live_one["seq"] > seqs[-1]
        await again.nothing_for(0.5)
    finally:
        await again.close()
        await customer.aclose()


async def test_concurrent_writers_through_both_processes_reach_one_subscriber_once_each_in_order(
    two_servers: list[Server],
):
    a, b = two_servers
    _, customer_a, secret = await new_customer(a)
    customer_b = b.client(secret)
    shipments = [await new_shipment(customer_a) for _ in range(4)]
    live = await Live.open(b, secret)
    try:
        await live.subscribe("all")

        async def writer(index: int) -> None:
            client = customer_a if index % 2 else customer_b
            for n in range(25):
                await post_event(client, shipments[index], n)

        await asyncio.gather(*(writer(i) for i in range(4)))
        received = await live.changes(100, timeout=20)
        seqs = [c["seq"] for c in received]
        assert all(x < y for x, y in itertools.pairwise(seqs))
        everything = (await customer_a.get("/v1/changes", params={"limit": 1000})).json()["items"]
        # the four shipments were created before the subscription
        assert seqs == [c["seq"] for c in everything if c["type"] != "created"]
        await live.nothing_for(0.5)
    finally:
        await live.close()
        await customer_a.aclose()
        await customer_b.aclose()


async def listeners_back(admin: asyncpg.Connection, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    query = "select count(*) from pg_stat_activity where application_name = $1 and datname = current_database()"
    while await admin.fetchval(query, APPLICATION_NAME) < count:
        assert time.monotonic() < deadline, "the listeners did not reconnect"
        await asyncio.sleep(0.05)


async def test_nothing_is_missed_when_the_listen_connection_is_killed_mid_stream(
    two_servers: list[Server], database_url: str
):
    a, b = two_servers
    _, customer, secret = await new_customer(a)
    shipment = await new_shipment(customer)
    live = await Live.open(b, secret)
    admin = await asyncpg.connect(database_url)
    try:
        await live.subscribe("all")
        for n in range(40):
            await post_event(customer, shipment, n)
            if n in (10, 25):
                await listeners_back(admin, 2)
                killed = await admin.fetchval(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                    " where application_name = $1 and datname = current_database()",
                    APPLICATION_NAME,
                )
                assert killed == 2  # one listener per process
        # the shipment's `created` change may come first: committed through the other process
        # just before the subscription, it can be after the `subscribed` seq (docs/live.md);
        # the events are what this test counts
        received = await live.changes(40, timeout=15, kinds=frozenset({"event"}))
        assert [c["event"]["event_id"] for c in received] == [f"e{n}" for n in range(40)]
    finally:
        await admin.close()
        await live.close()
        await customer.aclose()


async def test_a_client_that_stops_reading_is_cut_off_while_another_keeps_up(
    database_url: str, start_servers: StartServers
):
    [server] = await start_servers(database_url, 1, ONTIME_LIVE_MAX_LAG_SECONDS="1")
    _, customer, secret = await new_customer(server)
    numbers = [f"SLOW{i:05d}" for i in range(500)]
    # every change carries its shipment: 6 KB of incompressible metadata makes
    # each round of 500 changes 4 MB, so four outgrow any socket buffer here
    metadata = {"notes": base64.b64encode(os.urandom(4608)).decode()}
    for number in numbers:
        body = {
            "carrier": "dhl",
            "tracking_number": number,
            "promised_by": "2031-01-01T00:00:00Z",
            "metadata": metadata,
        }
        assert (await customer.post("/v1/shipments", json=body)).status_code == 201
    # a tiny receive window and queue: the kernel soon stops taking its data
    stalled_socket = socket.socket()
    stalled_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled_socket.connect(("127.0.0.1", server.port))
    stalled = await Live.open(server, secret, sock=stalled_socket, max_queue=1)
    healthy = await Live.open(server, secret)
    try:
        await stalled.subscribe("all")
        await healthy.subscribe("all")
        waits = []
        for round_ in range(4):
            batch = [
                {
                    "carrier": "dhl",
                    "tracking_number": number,
                    "status": "in_transit",
                    "occurred_at": f"2030-01-01T01:00:{round_:02d}Z",
                    "event_id": f"r{round_}-{number}",
                }
                for number in numbers
            ]
            sent = time.monotonic()
            r = await customer.post("/v1/events", json=batch)
            assert r.json()["accepted"] == 500
            await healthy.changes(500, timeout=10)
            waits.append(time.monotonic() - sent)
            await asyncio.sleep(0.5)
        # bursts of 500 are not falling behind: the healthy client got all 2,000
        # changes, each batch promptly, while the stalled one was cut off
        assert max(waits) < 5, waits

        async def read_until_closed() -> None:
            while True:
                await asyncio.wait_for(stalled.ws.recv(), 10)

        with pytest.raises(websockets.ConnectionClosed) as closed:
            await read_until_closed()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    finally:
        await healthy.close()
        stalled.ws.transport.abort()
        await customer.aclose()


async def test_a_customer_never_receives_another_accounts_changes(two_servers: list[Server]):
    a, b = two_servers
    _, alice, alice_secret = await new_customer(a)
    _, bob, _ = await new_customer(a)
    bobs = await new_shipment(bob)
    mine = await new_shipment(alice)
    live = await Live.open(b, alice_secret)
    try:
        await live.subscribe([bobs])
        await live.subscribe("all", since=0)
        await post_event(bob, bobs, 1)
        await post_event(alice, mine, 2)
        # the replay from 0 has her shipment's creation, not his
        created, change = await live.changes(2)
        assert (created["type"], created["shipment"]["id"]) == ("created", mine)
        assert change["shipment"]["id"] == mine
        await live.nothing_for(1.0)
    finally:
        await live.close()
        await alice.aclose()
        await bob.aclose()


async def test_a_browser_authenticates_with_a_first_message_or_is_closed_with_4401(two_servers: list[Server]):
    a, _ = two_servers
    _, customer, secret = await new_customer(a)
    url = a.url.replace("http", "ws") + "/v1/live"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": secret}))
        await ws.send(json.dumps({"type": "subscribe", "shipments": "all"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "subscribed"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "not-a-key"}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 4401
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 8)
        assert closed.value.rcvd.code == 4401
    await customer.aclose()


async def test_revoking_a_key_closes_its_open_sockets_on_every_process(two_servers: list[Server]):
    a, b = two_servers
    account, _, _ = await new_customer(a)
    async with a.client() as admin:
        key = (await admin.post("/v1/keys", json={"role": "customer", "account_id": account})).json()
        on_a, on_b = await Live.open(a, key["secret"]), await Live.open(b, key["secret"])
        await on_a.subscribe("all")
        await on_b.subscribe("all")
        assert (await admin.delete(f"/v1/keys/{key['id']}")).status_code == 204
    for live in (on_a, on_b):
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(live.ws.recv(), 3)
        assert closed.value.rcvd.code == 4403


async def test_subscribed_answers_a_seq_to_resume_from_even_when_nothing_was_replayed(two_servers: list[Server]):
    a, _ = two_servers
    _, customer, secret = await new_customer(a)
    shipment = await new_shipment(customer)
    await post_event(customer, shipment, 1)
    live = await Live.open(a, secret)
    try:
        latest = (await customer.get("/v1/changes")).json()["next_after"]
        # asked from the latest seq: nothing to replay, and resuming there again is right
        assert (await live.subscribe("all", since=latest))["seq"] == latest
    finally:
        await live.close()
        await customer.aclose()


async def test_a_support_socket_subscribing_is_audited_with_what_it_asked_for_and_a_customer_socket_is_not(
    database_url: str, two_servers: list[Server]
):
    a, _ = two_servers
    account, customer, secret = await new_customer(a)
    shipment = await new_shipment(customer)
    async with a.client() as admin:
        support_secret = (await admin.post("/v1/keys", json={"role": "support"})).json()["secret"]
    conn = await asyncpg.connect(database_url)
    own, desk = await Live.open(a, secret), await Live.open(a, support_secret)
    try:
        await own.subscribe([shipment])
        await desk.subscribe([shipment])
        await desk.subscribe("all")
        rows = await conn.fetch(
            "select role, action, account_id, shipment_ids, query from audit_log where role <> 'admin' order by id"
        )
        assert [(r["role"], r["action"], r["account_id"], r["shipment_ids"]) for r in rows] == [
            ("support", "WEBSOCKET /v1/live", account, [shipment]),
            ("support", "WEBSOCKET /v1/live", None, None),
        ]
        assert [json.loads(r["query"])["shipments"] for r in rows] == [[shipment], "all"]
    finally:
        await own.close()
        await desk.close()
        await conn.close()
        await customer.aclose()
