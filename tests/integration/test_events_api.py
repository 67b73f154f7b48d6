"""Tracking events over HTTP: order, terminal statuses, duplicates, the batch, who may post, lateness and risk."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.conftest import Api, problem, shipment_body

# shipment_body() promises 2030-01-10T17:00:00Z, comfortably after today
PROMISED_BY = "2030-01-10T17:00:00Z"


def event(status: str, occurred_at: str, **fields) -> dict:
    return {"status": status, "occurred_at": occurred_at, **fields}


def carrier_event(shipment: dict, status: str, occurred_at: str, **fields) -> dict:
    return {
        "carrier": shipment["carrier"],
        "tracking_number": shipment["tracking_number"],
        **event(status, occurred_at, **fields),
    }


async def a_shipment(customer, **overrides) -> dict:
    r = await customer.post("/v1/shipments", json=shipment_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


async def post_events(client, shipment: dict, body: dict | list) -> dict:
    r = await client.post(f"/v1/shipments/{shipment['id']}/events", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def current(customer, shipment: dict) -> dict:
    r = await customer.get(f"/v1/shipments/{shipment['id']}")
    assert r.status_code == 200, r.text
    return r.json()


async def timeline(customer, shipment: dict) -> list[dict]:
    r = await customer.get(f"/v1/shipments/{shipment['id']}/events")
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def changes(client, **params) -> list[dict]:
    r = await client.get("/v1/changes", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


# -- order ------------------------------------------------------------------------


ARRIVALS = {
    "in-order": [0, 1, 2],
    "reversed": [2, 1, 0],
    "latest-first": [2, 0, 1],
    "latest-in-the-middle": [0, 2, 1],
}


@pytest.mark.parametrize("arrival", ARRIVALS.values(), ids=ARRIVALS.keys())
async def test_status_follows_the_latest_event_by_occurred_at_whatever_the_arrival_order(api: Api, arrival: list[int]):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    journey = [
        event("in_transit", "2029-12-01T08:00:00Z", event_id="e1"),
        event("exception", "2029-12-02T08:00:00Z", event_id="e2", reason="weather"),
        event("out_for_delivery", "2029-12-03T06:30:00+01:00", event_id="e3"),
    ]
    for index in arrival:
        await post_events(customer, shipment, journey[index])
    now = await current(customer, shipment)
    assert now["status"] == "out_for_delivery"
    assert now["status_at"] == "2029-12-03T05:30:00Z"
    assert [e["event_id"] for e in await timeline(customer, shipment)] == ["e1", "e2", "e3"]


async def test_an_event_older_than_the_current_one_leaves_the_status_alone(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(customer, shipment, event("out_for_delivery", "2029-12-03T08:00:00Z"))
    answer = await post_events(customer, shipment, event("in_transit", "2029-12-01T08:00:00Z"))
    assert answer["accepted"] == 1
    assert answer["shipment"]["status"] == "out_for_delivery"
    assert (await current(customer, shipment))["status"] == "out_for_delivery"


async def test_an_older_event_does_not_move_a_delivered_shipment_back_but_joins_the_timeline(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(customer, shipment, event("delivered", "2029-12-05T14:00:00Z", event_id="d"))
    late_scan = await post_events(customer, shipment, event("out_for_delivery", "2029-12-05T07:00:00Z", event_id="o"))
    assert late_scan["results"][0]["outcome"] == "accepted"
    assert late_scan["shipment"]["status"] == "delivered"
    older = await post_events(customer, shipment, event("in_transit", "2029-12-01T08:00:00Z", event_id="t"))
    assert older["shipment"]["status"] == "delivered"
    now = await current(customer, shipment)
    assert (now["status"], now["delivered_at"]) == ("delivered", "2029-12-05T14:00:00Z")
    items = await timeline(customer, shipment)
    assert [(e["event_id"], e["status"]) for e in items] == [
        ("t", "in_transit"),
        ("o", "out_for_delivery"),
        ("d", "delivered"),
    ]
    assert [e["occurred_at"] for e in items] == sorted(e["occurred_at"] for e in items)


async def test_a_newer_non_terminal_event_does_not_reopen_a_delivered_shipment(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(customer, shipment, event("delivered", "2029-12-05T14:00:00Z"))
    answer = await post_events(customer, shipment, event("exception", "2029-12-06T09:00:00Z", reason="damaged"))
    assert answer["accepted"] == 1
    assert answer["shipment"]["status"] == "delivered"
    assert len(await timeline(customer, shipment)) == 2


# -- duplicates ---------------------------------------------------------------------


async def test_a_repeated_event_id_is_a_duplicate_with_the_same_answer_and_stored_once(
    api: Api, db: asyncpg.Connection
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    body = event("in_transit", "2029-12-01T08:00:00Z", event_id="dhl-778", location={"city": "Lyon", "country": "FR"})
    first = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=body)
    again = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=body)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    reached = {"shipments_reached": 1, "shipment_ids": [shipment["id"]], "event_id": "dhl-778"}
    assert first.json()["results"] == [{"index": 0, "outcome": "accepted", **reached}]
    assert again.json()["results"] == [{"index": 0, "outcome": "duplicate", **reached}]
    assert (again.json()["accepted"], again.json()["duplicate"]) == (0, 1)
    # the shipment in the second answer is the one the first answer left
    assert again.json()["shipment"] == first.json()["shipment"]
    assert await db.fetchval("select count(*) from events") == 1
    assert await db.fetchval("select count(*) from changes where kind = 'event'") == 1


async def test_a_repeated_event_id_with_other_content_is_still_a_duplicate_and_the_first_stands(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(customer, shipment, event("in_transit", "2029-12-01T08:00:00Z", event_id="x-1"))
    answer = await post_events(customer, shipment, event("delivered", "2029-12-02T08:00:00Z", event_id="x-1"))
    assert answer["duplicate"] == 1
    assert answer["shipment"]["status"] == "in_transit"
    assert [e["status"] for e in await timeline(customer, shipment)] == ["in_transit"]


async def test_a_repeated_event_id_within_one_list_is_stored_once(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    same = event("in_transit", "2029-12-01T08:00:00Z", event_id="dup")
    answer = await post_events(customer, shipment, [same, same, event("out_for_delivery", "2029-12-02T08:00:00Z")])
    assert [r["outcome"] for r in answer["results"]] == ["accepted", "duplicate", "accepted"]
    assert await db.fetchval("select count(*) from events") == 2


async def test_a_repeated_event_id_within_one_batch_is_stored_once(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    carrier = await api.role("carrier", carrier="dhl")
    item = carrier_event(shipment, "in_transit", "2029-12-01T08:00:00Z", event_id="b-1")
    r = await carrier.post("/v1/events", json=[item, item])
    assert r.status_code == 200, r.text
    answer = r.json()
    # a carrier key reads no shipment: it is told how many it reached, not which
    assert [(x["index"], x["outcome"], x["shipments_reached"]) for x in answer["results"]] == [
        (0, "accepted", 1),
        (1, "duplicate", 1),
    ]
    assert all("shipment_ids" not in x for x in answer["results"])
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (1, 1, 0)
    assert await db.fetchval("select count(*) from events") == 1


async def test_an_event_id_seen_on_one_endpoint_is_a_duplicate_on_the_other(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    other = await a_shipment(customer)
    carrier = await api.role("carrier", carrier="dhl")
    await post_events(carrier, shipment, event("in_transit", "2029-12-01T08:00:00Z", event_id="via-path"))
    r = await carrier.post(
        "/v1/events",
        json=[
            carrier_event(shipment, "in_transit", "2029-12-01T08:00:00Z", event_id="via-path"),
            carrier_event(shipment, "out_for_delivery", "2029-12-02T08:00:00Z", event_id="via-batch"),
        ],
    )
    assert [x["outcome"] for x in r.json()["results"]] == ["duplicate", "accepted"]
    back = await post_events(carrier, shipment, event("out_for_delivery", "2029-12-02T08:00:00Z", event_id="via-batch"))
    assert back["results"][0]["outcome"] == "duplicate"
    # an event id belongs to its shipment: the same id on another shipment is new
    elsewhere = await post_events(carrier, other, event("in_transit", "2029-12-01T08:00:00Z", event_id="via-path"))
    assert elsewhere["results"][0]["outcome"] == "accepted"
    rows = await db.fetch("select shipment_id, event_id from events order by shipment_id, event_id")
    assert sorted((row["shipment_id"], row["event_id"]) for row in rows) == sorted(
        [(shipment["id"], "via-batch"), (shipment["id"], "via-path"), (other["id"], "via-path")]
    )


async def test_an_event_without_event_id_resent_identically_is_stored_once(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    body = event(
        "in_transit", "2029-12-01T08:00:00Z", location={"city": "Lyon", "country": "FR"}, description="hub scan"
    )
    first = await post_events(customer, shipment, body)
    again = await post_events(customer, shipment, body)
    # the same instant written with another offset is the same event
    same_instant = await post_events(customer, shipment, {**body, "occurred_at": "2029-12-01T09:00:00+01:00"})
    assert first["results"][0]["outcome"] == "accepted"
    assert again["results"][0]["outcome"] == "duplicate"
    assert same_instant["results"][0]["outcome"] == "duplicate"
    different = await post_events(customer, shipment, {**body, "description": "hub scan, second pass"})
    assert different["results"][0]["outcome"] == "accepted"
    assert await db.fetchval("select count(*) from events") == 2


# -- the batch ----------------------------------------------------------------------


async def test_the_batch_answers_one_result_per_item_in_order_with_counts(api: Api):
    _, customer = await api.customer()
    a = await a_shipment(customer)
    b = await a_shipment(customer, carrier="ups")
    carrier = await api.role("carrier")
    await post_events(customer, a, event("in_transit", "2029-12-01T08:00:00Z", event_id="seen"))
    items = [
        carrier_event(b, "in_transit", "2029-12-01T09:00:00Z", event_id="b1"),
        carrier_event(a, "in_transit", "2029-12-01T08:00:00Z", event_id="seen"),
        {"carrier": "dhl", "tracking_number": "NOSUCH0001", **event("in_transit", "2029-12-01T08:00:00Z")},
        carrier_event(a, "out_for_delivery", "2029-12-02T07:00:00Z", event_id="a2"),
        carrier_event(b, "not_a_status", "2029-12-02T07:00:00Z"),
        {
            **carrier_event(b, "delivered", "2029-12-02T15:00:00Z", event_id="b2"),
            "tracking_number": b["tracking_number"].lower(),
        },
    ]
    r = await carrier.post("/v1/events", json=items)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [(x["index"], x["outcome"], x["shipments_reached"]) for x in answer["results"]] == [
        (0, "accepted", 1),
        (1, "duplicate", 1),
        (2, "rejected", 0),
        (3, "accepted", 1),
        (4, "rejected", 0),
        (5, "accepted", 1),
    ]
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (3, 1, 2)
    assert [e["path"] for e in answer["results"][2]["errors"]] == ["$[2].tracking_number"]
    assert [e["path"] for e in answer["results"][4]["errors"]] == ["$[4].status"]
    assert all("errors" not in answer["results"][i] for i in (0, 1, 3, 5))
    assert (await current(customer, a))["status"] == "out_for_delivery"
    assert (await current(customer, b))["status"] == "delivered"


async def test_an_empty_batch_is_answered_with_zero_counts(api: Api):
    carrier = await api.role("carrier")
    r = await carrier.post("/v1/events", json=[])
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [], "accepted": 0, "duplicate": 0, "rejected": 0}


# -- who may post -------------------------------------------------------------------


async def test_a_carrier_key_limited_to_dhl_cannot_post_to_a_ups_shipment(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    ups = await a_shipment(customer, carrier="ups")
    dhl = await a_shipment(customer, carrier="dhl")
    carrier = await api.role("carrier", carrier="DHL")
    r = await carrier.post(
        "/v1/events",
        json=[
            carrier_event(ups, "in_transit", "2029-12-01T08:00:00Z"),
            carrier_event(dhl, "in_transit", "2029-12-01T08:00:00Z"),
        ],
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["outcome"] for x in results] == ["rejected", "accepted"]
    # rejected exactly as a tracking number that does not exist: nothing leaks
    assert [e["path"] for e in results[0]["errors"]] == ["$[0].tracking_number"]
    direct = await carrier.post(f"/v1/shipments/{ups['id']}/events", json=event("in_transit", "2029-12-01T08:00:00Z"))
    assert direct.status_code == 404
    assert problem(direct)["type"].endswith("not-found")
    assert (await current(customer, ups))["status"] == "label_created"
    assert await db.fetchval("select count(*) from events where shipment_id = $1", ups["id"]) == 0
    assert (await post_events(carrier, dhl, event("out_for_delivery", "2029-12-02T08:00:00Z")))["accepted"] == 1


async def test_a_carrier_key_without_a_carrier_may_post_to_any_carrier(api: Api):
    _, customer = await api.customer()
    ups = await a_shipment(customer, carrier="ups")
    carrier = await api.role("carrier")
    answer = await post_events(carrier, ups, event("in_transit", "2029-12-01T08:00:00Z"))
    assert answer["accepted"] == 1
    # carriers post events but read no shipment: not even in the answer
    assert "shipment" not in answer


async def test_a_support_key_cannot_post_events(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    support = await api.role("support")
    direct = await support.post(
        f"/v1/shipments/{shipment['id']}/events", json=event("delivered", "2029-12-01T08:00:00Z")
    )
    assert direct.status_code == 404
    problem(direct)
    batch = await support.post("/v1/events", json=[carrier_event(shipment, "delivered", "2029-12-01T08:00:00Z")])
    assert batch.status_code == 404
    problem(batch)
    assert await db.fetchval("select count(*) from events") == 0
    assert (await current(customer, shipment))["status"] == "label_created"


# -- lateness -----------------------------------------------------------------------


async def test_a_delivery_after_the_promise_writes_one_late_record_in_the_same_transaction(
    api: Api, db: asyncpg.Connection
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer, promised_by="2030-01-10T18:00:00+01:00")
    await post_events(customer, shipment, event("out_for_delivery", "2030-01-10T08:00:00Z"))
    answer = await post_events(customer, shipment, event("delivered", "2030-01-11T19:30:15+01:00", event_id="pod"))
    assert answer["shipment"]["late"] is True
    assert answer["shipment"]["delivered_at"] == "2030-01-11T18:30:15Z"
    records = await db.fetch("select *, xmin::text as tx from late_deliveries")
    assert len(records) == 1
    record = records[0]
    assert record["shipment_id"] == shipment["id"]
    assert record["detected_by"] == "delivery"
    # delivered 2030-01-11T18:30:15Z, promised 2030-01-10T17:00:00Z
    assert record["delay_seconds"] == 25 * 3600 + 30 * 60 + 15
    delivered_tx = await db.fetchval("select xmin::text from events where event_id = 'pod'")
    late_change_tx = await db.fetchval("select xmin::text from changes where kind = 'late'")
    assert record["tx"] == delivered_tx == late_change_tx
    # a repeat of the delivery changes nothing
    await post_events(customer, shipment, event("delivered", "2030-01-11T19:30:15+01:00", event_id="pod"))
    assert await db.fetchval("select count(*) from late_deliveries") == 1


async def test_a_late_delivery_puts_a_late_change_after_its_event_change_in_the_feed(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(customer, shipment, event("in_transit", "2030-01-09T08:00:00Z"))
    await post_events(customer, shipment, event("delivered", "2030-01-10T18:00:00Z"))
    feed = await changes(customer)
    assert [c["type"] for c in feed] == ["created", "event", "event", "late"]
    delivered, late = feed[2], feed[3]
    assert delivered["event"]["status"] == "delivered"
    assert late["seq"] > delivered["seq"]
    assert late["shipment"]["id"] == shipment["id"]
    assert late["shipment"]["late"] is True
    record = late["late_delivery"]
    assert {k: record[k] for k in ("shipment_id", "promised_by", "detected_by", "delivered_at", "delay_seconds")} == {
        "shipment_id": shipment["id"],
        "promised_by": PROMISED_BY,
        "detected_by": "delivery",
        "delivered_at": "2030-01-10T18:00:00Z",
        "delay_seconds": 3600,
    }


async def test_a_delivery_on_time_writes_no_late_record(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    answer = await post_events(customer, shipment, event("delivered", PROMISED_BY))  # on the dot is on time
    assert answer["shipment"]["late"] is False
    assert await db.fetchval("select count(*) from late_deliveries") == 0
    assert [c["type"] for c in await changes(customer)] == ["created", "event"]


async def test_the_late_record_dates_the_delivery_by_the_first_hand_over(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(customer, shipment, event("delivered", "2030-01-12T17:00:00Z", event_id="second-scan"))
    await post_events(customer, shipment, event("delivered", "2030-01-11T17:00:00Z", event_id="first-scan"))
    assert await db.fetchval("select delay_seconds from late_deliveries") == 24 * 3600
    assert (await current(customer, shipment))["delivered_at"] == "2030-01-11T17:00:00Z"


# -- estimates and risk ----------------------------------------------------------------


async def test_an_estimate_after_the_promise_puts_the_shipment_at_risk_and_a_newer_on_time_one_clears_it(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    risky = await post_events(
        customer, shipment, event("in_transit", "2029-12-01T08:00:00Z", estimated_delivery="2030-01-11T12:00:00+01:00")
    )
    assert risky["shipment"]["at_risk"] is True
    assert risky["shipment"]["estimated_delivery"] == "2030-01-11T11:00:00Z"
    assert (await current(customer, shipment))["at_risk"] is True
    # an older estimate does not outvote the newer one
    stale = await post_events(
        customer, shipment, event("in_transit", "2029-11-30T08:00:00Z", estimated_delivery="2030-01-05T12:00:00Z")
    )
    assert stale["shipment"]["at_risk"] is True
    cleared = await post_events(
        customer, shipment, event("in_transit", "2029-12-02T08:00:00Z", estimated_delivery="2030-01-10T12:00:00Z")
    )
    assert cleared["shipment"]["at_risk"] is False
    assert cleared["shipment"]["estimated_delivery"] == "2030-01-10T12:00:00Z"
    assert (await current(customer, shipment))["at_risk"] is False


async def test_first_estimated_delivery_keeps_the_first_estimate(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(
        customer, shipment, event("in_transit", "2029-12-01T08:00:00Z", estimated_delivery="2030-01-08T12:00:00Z")
    )
    await post_events(
        customer, shipment, event("in_transit", "2029-12-03T08:00:00Z", estimated_delivery="2030-01-12T12:00:00Z")
    )
    await post_events(customer, shipment, event("exception", "2029-12-04T08:00:00Z", reason="weather"))
    now = await current(customer, shipment)
    assert now["first_estimated_delivery"] == "2030-01-08T12:00:00Z"
    assert now["estimated_delivery"] == "2030-01-12T12:00:00Z"
    assert now["at_risk"] is True


async def test_a_delivered_shipment_is_never_at_risk(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await post_events(
        customer, shipment, event("in_transit", "2029-12-01T08:00:00Z", estimated_delivery="2030-02-01T00:00:00Z")
    )
    answer = await post_events(customer, shipment, event("delivered", "2030-01-09T10:00:00Z"))
    assert answer["shipment"]["at_risk"] is False
    assert answer["shipment"]["late"] is False
