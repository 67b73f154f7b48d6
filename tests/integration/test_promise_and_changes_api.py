"""The promise over HTTP (revisions, their history, what they may not undo) and the change feed."""

from __future__ import annotations

import itertools

import asyncpg
import pytest

from tests.integration.conftest import Api, problem, shipment_body


def event(status: str, occurred_at: str, **fields) -> dict:
    return {"status": status, "occurred_at": occurred_at, **fields}


async def a_shipment(customer, **overrides) -> dict:
    r = await customer.post("/v1/shipments", json=shipment_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


async def post_event(client, shipment: dict, body: dict) -> dict:
    r = await client.post(f"/v1/shipments/{shipment['id']}/events", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def revise(client, shipment: dict, **body) -> dict:
    r = await client.put(f"/v1/shipments/{shipment['id']}/promise", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def feed(client, **params) -> dict:
    r = await client.get("/v1/changes", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def every_change(client, page_size: int = 1000, **params) -> list[dict]:
    """The whole feed, followed page by page through next_after."""
    items, after = [], 0
    while True:
        page = await feed(client, after=after, limit=page_size, **params)
        items += page["items"]
        if not page["items"]:
            assert page["next_after"] == after
            return items
        after = page["next_after"]


# -- revising the promise ----------------------------------------------------------


async def test_revising_the_promise_keeps_every_revision_oldest_first_with_previous_values(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer, promised_by="2030-01-10T18:00:00+01:00")
    first = await revise(customer, shipment, promised_by="2030-01-12T18:00:00+01:00", reason="carrier strike")
    assert first["promised_by"] == "2030-01-12T17:00:00Z"
    assert first["version"] == shipment["version"] + 1
    second = await revise(
        customer,
        shipment,
        promised_by="2030-01-14T18:00:00Z",
        promised_from="2030-01-14T08:00:00Z",
        reason="customer asked for a later slot",
    )
    assert (second["promised_by"], second["promised_from"]) == ("2030-01-14T18:00:00Z", "2030-01-14T08:00:00Z")

    r = await customer.get(f"/v1/shipments/{shipment['id']}/promise")
    assert r.status_code == 200, r.text
    history = r.json()
    assert (history["promised_by"], history["promised_from"]) == ("2030-01-14T18:00:00Z", "2030-01-14T08:00:00Z")
    revisions = history["revisions"]
    assert [
        (x["previous_promised_by"], x["previous_promised_from"], x["promised_by"], x["promised_from"], x["reason"])
        for x in revisions
    ] == [
        ("2030-01-10T17:00:00Z", None, "2030-01-12T17:00:00Z", None, "carrier strike"),
        (
            "2030-01-12T17:00:00Z",
            None,
            "2030-01-14T18:00:00Z",
            "2030-01-14T08:00:00Z",
            "customer asked for a later slot",
        ),
    ]
    assert revisions[0]["revised_at"] <= revisions[1]["revised_at"]
    assert (await customer.get(f"/v1/shipments/{shipment['id']}")).json()["promised_by"] == "2030-01-14T18:00:00Z"


async def test_a_shipment_never_revised_has_an_empty_promise_history(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    history = (await customer.get(f"/v1/shipments/{shipment['id']}/promise")).json()
    assert history == {"promised_by": shipment["promised_by"], "promised_from": None, "revisions": []}


async def test_revising_the_promise_appends_a_promise_revised_change(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_event(customer, shipment, event("in_transit", "2029-12-01T08:00:00Z"))
    revised = await revise(customer, shipment, promised_by="2030-02-01T12:00:00Z", reason="weather")
    items = (await feed(customer))["items"]
    assert [c["type"] for c in items] == ["created", "event", "promise_revised"]
    change = items[2]
    assert change["seq"] > items[1]["seq"]
    assert change["shipment"]["id"] == shipment["id"]
    assert change["shipment"]["promised_by"] == "2030-02-01T12:00:00Z"
    assert change["shipment"]["version"] == revised["version"]
    assert change["promise"]["previous_promised_by"] == shipment["promised_by"]
    assert change["promise"]["promised_by"] == "2030-02-01T12:00:00Z"
    assert change["promise"]["reason"] == "weather"


async def test_a_revised_promise_moves_at_risk_with_it(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_event(
        customer, shipment, event("in_transit", "2029-12-01T08:00:00Z", estimated_delivery="2030-01-09T12:00:00Z")
    )
    tighter = await revise(customer, shipment, promised_by="2030-01-08T12:00:00Z", reason="express upgrade")
    assert tighter["at_risk"] is True
    looser = await revise(customer, shipment, promised_by="2030-01-09T12:00:00Z", reason="back to standard")
    assert looser["at_risk"] is False


@pytest.mark.parametrize("terminal", ["delivered", "returned_to_sender", "cancelled"])
async def test_a_promise_cannot_be_revised_once_the_shipment_is_settled(
    api: Api, db: asyncpg.Connection, terminal: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    settled = await post_event(customer, shipment, event(terminal, "2029-12-05T10:00:00Z"))
    counts = "select (select count(*) from promise_revisions), (select count(*) from changes)"
    before = tuple(await db.fetchrow(counts))
    r = await customer.put(
        f"/v1/shipments/{shipment['id']}/promise", json={"promised_by": "2030-03-01T00:00:00Z", "reason": "too late"}
    )
    assert r.status_code == 409, r.text
    body = problem(r)
    assert body["type"].endswith("/shipment-closed")
    assert terminal in body["detail"]
    assert tuple(await db.fetchrow(counts)) == before
    now = (await customer.get(f"/v1/shipments/{shipment['id']}")).json()
    assert (now["promised_by"], now["version"]) == (shipment["promised_by"], settled["shipment"]["version"])


async def test_a_late_delivery_record_survives_an_attempt_to_revise_the_promise(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_event(customer, shipment, event("delivered", "2030-01-11T17:00:00Z"))
    r = await customer.put(
        f"/v1/shipments/{shipment['id']}/promise", json={"promised_by": "2030-01-12T00:00:00Z", "reason": "excuse"}
    )
    assert r.status_code == 409
    rows = await db.fetch("select shipment_id, delay_seconds from late_deliveries")
    assert [(row["shipment_id"], row["delay_seconds"]) for row in rows] == [(shipment["id"], 24 * 3600)]
    assert (await customer.get(f"/v1/shipments/{shipment['id']}")).json()["late"] is True


async def test_revising_the_promise_never_erases_a_deadline_record(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer, promised_by="2020-06-01T12:00:00Z")
    # the record the lateness check makes when a deadline passes with the parcel on its way
    await db.execute(
        """insert into late_deliveries (id, shipment_id, account_id, carrier, promised_by, detected_at, detected_by)
           values ('late_' || $1, $1, $2, 'dhl', '2020-06-01T12:00:00Z', '2020-06-01T12:05:00Z', 'deadline')
           on conflict (shipment_id) do nothing""",
        shipment["id"],
        shipment["account_id"],
    )
    await db.execute("update shipments set late = true where id = $1", shipment["id"])

    revised = await revise(customer, shipment, promised_by="2030-01-10T12:00:00Z", reason="rebooked")
    assert revised["late"] is True
    # delivered well within the new promise: the broken one still counts, from its own deadline
    delivered = await post_event(customer, shipment, event("delivered", "2020-06-02T12:00:00Z"))
    assert delivered["shipment"]["late"] is True
    rows = await db.fetch("select detected_by, promised_by, delay_seconds from late_deliveries")
    assert [(r["detected_by"], r["delay_seconds"]) for r in rows] == [("deadline", 24 * 3600)]


async def test_revising_a_promise_whose_deadline_has_passed_keeps_the_shipment_late(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer, promised_by="2020-06-01T12:00:00Z")
    await post_event(customer, shipment, event("in_transit", "2020-05-30T08:00:00Z"))
    assert (await customer.get(f"/v1/shipments/{shipment['id']}")).json()["late"] is True
    # the deadline passed with the parcel on its way: moving the promise now must not hide that
    revised = await revise(customer, shipment, promised_by="2030-01-10T12:00:00Z", reason="rebooked")
    assert revised["late"] is True
    rows = await db.fetch("select detected_by, promised_by from late_deliveries where shipment_id = $1", shipment["id"])
    assert [(r["detected_by"], r["promised_by"].isoformat()) for r in rows] == [
        ("deadline", "2020-06-01T12:00:00+00:00")
    ]


@pytest.mark.parametrize("role", ["support", "carrier"])
async def test_only_the_owner_or_an_admin_may_revise_a_promise(api: Api, db: asyncpg.Connection, role: str):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    other = await api.role(role)
    r = await other.put(
        f"/v1/shipments/{shipment['id']}/promise", json={"promised_by": "2030-03-01T00:00:00Z", "reason": "r"}
    )
    assert r.status_code == 404
    problem(r)
    assert await db.fetchval("select count(*) from promise_revisions") == 0
    by_admin = await revise(api.admin, shipment, promised_by="2030-03-01T00:00:00Z", reason="ops")
    assert by_admin["promised_by"] == "2030-03-01T00:00:00Z"
    assert await db.fetchval("select count(*) from promise_revisions") == 1


# -- the change feed ----------------------------------------------------------------


async def make_history(customer, shipments: int = 3) -> list[dict]:
    """A few shipments, each with two events and one promise revision: nine changes for three."""
    made = []
    for n in range(shipments):
        shipment = await a_shipment(customer)
        await post_event(customer, shipment, event("in_transit", f"2029-12-0{n + 1}T08:00:00Z"))
        await revise(customer, shipment, promised_by="2030-02-01T00:00:00Z", reason="slower lane")
        await post_event(customer, shipment, event("out_for_delivery", f"2029-12-0{n + 2}T08:00:00Z"))
        made.append(shipment)
    return made


async def test_the_feed_returns_the_accounts_changes_in_strictly_increasing_seq_order(api: Api):
    _, customer = await api.customer()
    shipments = await make_history(customer)
    items = (await feed(customer, after=0))["items"]
    seqs = [c["seq"] for c in items]
    assert len(items) == 12
    assert all(a < b for a, b in itertools.pairwise(seqs))
    assert [c["type"] for c in items] == ["created", "event", "promise_revised", "event"] * 3
    assert [c["shipment"]["id"] for c in items] == [s["id"] for s in shipments for _ in range(4)]
    # each change carries the shipment as that change left it
    versions = [c["shipment"]["version"] for c in items[:4]]
    assert versions == [1, 2, 3, 4]


async def test_the_feed_pages_by_limit_and_resumes_from_next_after(api: Api):
    _, customer = await api.customer()
    await make_history(customer)
    everything = (await feed(customer))["items"]
    pages, after = [], 0
    while True:
        page = await feed(customer, after=after, limit=5)
        assert len(page["items"]) <= 5
        if not page["items"]:
            assert page["next_after"] == after
            break
        assert page["next_after"] == page["items"][-1]["seq"]
        pages.append([c["seq"] for c in page["items"]])
        after = page["next_after"]
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [seq for p in pages for seq in p] == [c["seq"] for c in everything]
    middle = (await feed(customer, after=everything[2]["seq"], limit=2))["items"]
    assert [c["seq"] for c in middle] == [c["seq"] for c in everything[3:5]]


async def test_the_feed_after_its_last_seq_is_empty_and_stays_put(api: Api):
    _, customer = await api.customer()
    await make_history(customer, shipments=1)
    last = (await feed(customer))["items"][-1]["seq"]
    assert await feed(customer, after=last) == {"items": [], "next_after": last}
    assert await feed(customer, after=last + 1000) == {"items": [], "next_after": last + 1000}


async def test_a_customer_never_sees_another_accounts_changes(api: Api):
    alice_account, alice = await api.customer("Alice")
    bob_account, bob = await api.customer("Bob")
    alices = await make_history(alice, shipments=2)
    bobs = await make_history(bob, shipments=1)
    await post_event(alice, alices[0], event("delivered", "2029-12-09T08:00:00Z"))

    seen_by_bob = await every_change(bob, page_size=2)
    assert {c["shipment"]["account_id"] for c in seen_by_bob} == {bob_account}
    assert {c["shipment"]["id"] for c in seen_by_bob} == {bobs[0]["id"]}
    assert len(seen_by_bob) == 4
    # naming another account does not widen a customer's feed
    assert await every_change(bob, account_id=alice_account) == seen_by_bob
    seen_by_alice = await every_change(alice)
    assert {c["shipment"]["account_id"] for c in seen_by_alice} == {alice_account}
    assert len(seen_by_alice) == 9


async def test_support_sees_every_accounts_changes_and_may_filter_by_account(api: Api):
    alice_account, alice = await api.customer("Alice")
    bob_account, bob = await api.customer("Bob")
    await make_history(alice, shipments=1)
    await make_history(bob, shipments=1)
    await make_history(alice, shipments=1)
    support = await api.role("support")

    everyone = await every_change(support, page_size=4)
    assert len(everyone) == 12
    assert [c["shipment"]["account_id"] for c in everyone] == [alice_account] * 4 + [bob_account] * 4 + [
        alice_account
    ] * 4
    seqs = [c["seq"] for c in everyone]
    assert seqs == sorted(set(seqs))
    only_bob = await every_change(support, account_id=bob_account)
    assert only_bob == everyone[4:8]
    assert await every_change(support, account_id="acc_nobody") == []
    assert await every_change(api.admin) == everyone


async def test_a_carrier_key_cannot_read_the_feed(api: Api):
    _, customer = await api.customer()
    await make_history(customer, shipments=1)
    carrier = await api.role("carrier")
    r = await carrier.get("/v1/changes")
    assert r.status_code == 404
    problem(r)


async def test_change_bodies_carry_the_shipment_without_the_recipient(api: Api):
    _, customer = await api.customer()
    await make_history(customer, shipments=1)
    shipment = (await customer.get("/v1/shipments")).json()["items"][0]
    # after the revised promise (2030-02-01): a `late` change too
    await post_event(customer, shipment, event("delivered", "2030-02-02T08:00:00Z"))
    support = await api.role("support")
    for reader in (customer, support):
        r = await reader.get("/v1/changes")
        assert r.status_code == 200
        items = r.json()["items"]
        assert {c["type"] for c in items} == {"created", "event", "promise_revised", "late"}
        for change in items:
            assert "recipient" not in change["shipment"], change["type"]
            assert change["shipment"]["id"] == shipment["id"]
        # not merely omitted from the top level: nowhere in the feed at all
        assert "Ana Ruiz" not in r.text and "ana@example.com" not in r.text
