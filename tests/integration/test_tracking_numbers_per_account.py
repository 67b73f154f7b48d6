"""A carrier + tracking number is unique per account; a carrier event addressed by it reaches
every shipment with it that the key may write to, and names them only to keys that may read them."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.integration.conftest import Api, new_tracking_number, problem, shipment_body


async def create(customer, **overrides) -> dict:
    r = await customer.post("/v1/shipments", json=shipment_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


def carrier_event(tracking_number: str, event_id: str, *, carrier: str = "dhl", status: str = "in_transit") -> dict:
    return {
        "carrier": carrier,
        "tracking_number": tracking_number,
        "status": status,
        "occurred_at": "2029-12-01T08:00:00Z",
        "event_id": event_id,
    }


async def post_batch(client, items: list[dict]) -> dict:
    r = await client.post("/v1/events", json=items)
    assert r.status_code == 200, r.text
    return r.json()


async def status_of(customer, shipment: dict) -> str:
    r = await customer.get(f"/v1/shipments/{shipment['id']}")
    assert r.status_code == 200, r.text
    return r.json()["status"]


async def two_accounts_with_one_number(api: Api) -> tuple[str, tuple, tuple]:
    number = new_tracking_number()
    _, alice = await api.customer("Alice")
    _, bob = await api.customer("Bob")
    return (
        number,
        (alice, await create(alice, tracking_number=number)),
        (bob, await create(bob, tracking_number=number)),
    )


# -- registering ------------------------------------------------------------------------


async def test_another_account_may_register_a_number_already_registered(api: Api, db: asyncpg.Connection):
    number, (_, alices), (_, bobs) = await two_accounts_with_one_number(api)
    assert alices["id"] != bobs["id"]
    assert (alices["tracking_number"], bobs["tracking_number"]) == (number, number)
    assert await db.fetchval("select count(*) from shipments where tracking_number = $1", number) == 2


async def test_the_same_account_registering_a_number_twice_is_a_conflict_that_names_no_other_account(
    api: Api, db: asyncpg.Connection
):
    number, (alice, _), _ = await two_accounts_with_one_number(api)
    # written differently, normalised to the same number
    r = await alice.post("/v1/shipments", json=shipment_body(carrier="DHL", tracking_number=number.lower()))
    assert r.status_code == 409, r.text
    body = problem(r)
    assert body["type"].endswith("/tracking-number-taken")
    assert "this account" in body["detail"]
    assert await db.fetchval("select count(*) from shipments where tracking_number = $1", number) == 2


async def test_the_same_number_with_another_carrier_is_another_shipment(api: Api):
    number = new_tracking_number()
    _, alice = await api.customer()
    await create(alice, tracking_number=number)
    await create(alice, tracking_number=number, carrier="ups")


# -- carrier events addressed by number ---------------------------------------------------


@pytest.mark.parametrize("bound", [True, False], ids=["carrier-key-bound-to-dhl", "carrier-key-unbound"])
async def test_a_carrier_event_reaches_the_number_in_every_account_and_names_none(
    api: Api, db: asyncpg.Connection, bound: bool
):
    number, (alice, alices), (bob, bobs) = await two_accounts_with_one_number(api)
    carrier = await api.role("carrier", carrier="dhl" if bound else None)
    answer = await post_batch(carrier, [carrier_event(number, "scan-1")])
    assert answer["results"] == [{"index": 0, "outcome": "accepted", "shipments_reached": 2, "event_id": "scan-1"}]
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (1, 0, 0)
    assert await status_of(alice, alices) == "in_transit"
    assert await status_of(bob, bobs) == "in_transit"
    rows = await db.fetch("select shipment_id from events where event_id = 'scan-1' order by shipment_id")
    assert [r["shipment_id"] for r in rows] == sorted([alices["id"], bobs["id"]])
    # each account's feed has its own shipment's change
    for customer, shipment in ((alice, alices), (bob, bobs)):
        feed = (await customer.get("/v1/changes")).json()["items"]
        assert [(c["type"], c["shipment"]["id"]) for c in feed] == [
            ("created", shipment["id"]),
            ("event", shipment["id"]),
        ]


async def test_a_carrier_key_bound_to_another_carrier_reaches_nothing(api: Api, db: asyncpg.Connection):
    number, _, _ = await two_accounts_with_one_number(api)
    ups = await api.role("carrier", carrier="ups")
    answer = await post_batch(ups, [carrier_event(number, "scan-1")])
    [result] = answer["results"]
    assert (result["outcome"], result["shipments_reached"]) == ("rejected", 0)
    assert [e["path"] for e in result["errors"]] == ["$[0].tracking_number"]
    assert await db.fetchval("select count(*) from events") == 0


async def test_a_customer_event_reaches_only_its_own_accounts_shipment_and_names_it(api: Api, db: asyncpg.Connection):
    number, (alice, alices), (bob, bobs) = await two_accounts_with_one_number(api)
    answer = await post_batch(alice, [carrier_event(number, "scan-1")])
    assert answer["results"] == [
        {
            "index": 0,
            "outcome": "accepted",
            "shipments_reached": 1,
            "shipment_ids": [alices["id"]],
            "event_id": "scan-1",
        }
    ]
    assert await status_of(alice, alices) == "in_transit"
    assert await status_of(bob, bobs) == "label_created"
    assert [r["shipment_id"] for r in await db.fetch("select shipment_id from events")] == [alices["id"]]


async def test_a_customer_learns_nothing_of_a_number_only_another_account_has(api: Api, db: asyncpg.Connection):
    number = new_tracking_number()
    _, alice = await api.customer("Alice")
    _, bob = await api.customer("Bob")
    await create(bob, tracking_number=number)
    answer = await post_batch(alice, [carrier_event(number, "probe"), carrier_event(new_tracking_number(), "probe")])
    taken, unknown = answer["results"]
    assert (taken["outcome"], taken["shipments_reached"]) == ("rejected", 0)
    # the same answer as for a number nobody has
    assert taken["errors"] == [{**e, "path": "$[0].tracking_number"} for e in unknown["errors"]]
    assert "shipment_ids" not in taken
    assert await db.fetchval("select count(*) from events") == 0


async def test_an_admin_event_reaches_every_account_and_names_every_shipment(api: Api):
    number, (_, alices), (_, bobs) = await two_accounts_with_one_number(api)
    answer = await post_batch(api.admin, [carrier_event(number, "scan-1")])
    [result] = answer["results"]
    assert result["shipments_reached"] == 2
    assert result["shipment_ids"] == sorted([alices["id"], bobs["id"]])


async def test_duplicates_are_per_shipment_and_an_event_new_to_one_of_them_is_accepted(
    api: Api, db: asyncpg.Connection
):
    number, (alice, alices), (_, bobs) = await two_accounts_with_one_number(api)
    # Alice's shipment already has the event, through its own path
    r = await alice.post(
        f"/v1/shipments/{alices['id']}/events",
        json={"status": "in_transit", "occurred_at": "2029-12-01T08:00:00Z", "event_id": "scan-1"},
    )
    assert r.status_code == 201, r.text
    carrier = await api.role("carrier", carrier="dhl")
    first = await post_batch(carrier, [carrier_event(number, "scan-1")])
    assert [(x["outcome"], x["shipments_reached"]) for x in first["results"]] == [("accepted", 2)]
    again = await post_batch(carrier, [carrier_event(number, "scan-1"), carrier_event(number, "scan-1")])
    assert [(x["outcome"], x["shipments_reached"]) for x in again["results"]] == [("duplicate", 2), ("duplicate", 2)]
    rows = await db.fetch("select shipment_id from events order by shipment_id")
    assert [r["shipment_id"] for r in rows] == sorted([alices["id"], bobs["id"]])
    assert await db.fetchval("select count(*) from changes where kind = 'event'") == 2


async def test_two_batches_on_the_same_numbers_in_opposite_orders_never_deadlock(api: Api, db: asyncpg.Connection):
    numbers = [new_tracking_number() for _ in range(6)]
    for name in ("Alice", "Bob"):
        _, customer = await api.customer(name)
        for number in numbers:
            await create(customer, tracking_number=number)
    carrier = await api.role("carrier", carrier="dhl")

    async def batch(order: list[str], round_: int, side: str) -> dict:
        return await post_batch(carrier, [carrier_event(n, f"{side}-{round_}-{n}") for n in order])

    for round_ in range(5):
        forward, backward = await asyncio.wait_for(
            asyncio.gather(batch(numbers, round_, "f"), batch(numbers[::-1], round_, "b")), 20
        )
        for answer in (forward, backward):
            assert answer["accepted"] == len(numbers)
            assert all(x["shipments_reached"] == 2 for x in answer["results"])
    assert await db.fetchval("select count(*) from events") == 5 * 2 * len(numbers) * 2
