"""A new shipment is a change: `created`, appended in the create's transaction, once."""

from __future__ import annotations

import json

import asyncpg

from api.live.hub import Hub
from api.shell.auth import Principal
from tests.integration.conftest import Api, shipment_body
from tests.integration.test_bad_input import row_counts


async def feed(client, **params) -> list[dict]:
    r = await client.get("/v1/changes", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_creating_a_shipment_appends_a_created_change_with_the_shipment_but_no_recipient(api: Api):
    _, customer = await api.customer()
    r = await customer.post("/v1/shipments", json=shipment_body())
    assert r.status_code == 201, r.text
    created = r.json()
    [change] = await feed(customer)
    assert change["type"] == "created"
    assert isinstance(change["seq"], int)
    # what goes beside the recipient (the recipient's links) stays off the feed with it
    beside = {"recipient", "tracking_url", "feedback_url"}
    assert beside <= set(created) and not beside & set(change["shipment"])
    assert change["shipment"] == {k: v for k, v in created.items() if k not in beside}
    assert "Ana Ruiz" not in json.dumps(change)


async def test_a_retry_with_the_same_idempotency_key_appends_no_second_created_change(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    body = shipment_body()
    first = await customer.post("/v1/shipments", json=body, headers={"Idempotency-Key": "order-1"})
    again = await customer.post("/v1/shipments", json=body, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 201, first.text
    assert again.json()["id"] == first.json()["id"]
    assert [c["type"] for c in await feed(customer)] == ["created"]
    assert await db.fetchval("select count(*) from changes") == 1


async def test_a_refused_create_appends_no_change(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    body = shipment_body()
    assert (await customer.post("/v1/shipments", json=body)).status_code == 201
    before = await row_counts(db)
    assert (await customer.post("/v1/shipments", json=body)).status_code == 409
    assert (
        await customer.post("/v1/shipments", json={**body, "promised_by": "1969-01-01T00:00:00Z"})
    ).status_code == 400
    assert await row_counts(db) == before


async def test_a_shipment_an_admin_creates_appears_in_its_accounts_feed_only(api: Api):
    alice_account, alice = await api.customer("Alice")
    _, bob = await api.customer("Bob")
    r = await api.admin.post("/v1/shipments", json=shipment_body(account_id=alice_account))
    assert r.status_code == 201, r.text
    assert [(c["type"], c["shipment"]["id"]) for c in await feed(alice)] == [("created", r.json()["id"])]
    assert await feed(bob) == []
    support = await api.role("support")
    assert [c["shipment"]["id"] for c in await feed(support)] == [r.json()["id"]]


async def test_an_all_subscriber_of_the_account_is_sent_the_created_change(api: Api, pool: asyncpg.Pool):
    account_id, customer = await api.customer()
    hub = Hub(pool, poll_interval=0.01)
    await hub.start()
    try:
        principal = Principal(key_id="key_1", role="customer", account_id=account_id, carrier=None)
        subscriber = hub.connect(principal, b"a")
        await hub.subscribe(subscriber, accounts=[account_id])
        r = await customer.post("/v1/shipments", json=shipment_body())
        assert r.status_code == 201, r.text
        await hub.catch_up()
        [message] = [json.loads(text) for _, text in subscriber.outbox]
        assert (message["type"], message["shipment"]["id"]) == ("created", r.json()["id"])
        assert message["seq"] == (await feed(customer))[0]["seq"]
    finally:
        await hub.stop()
