"""Broken promises caught at the deadline, at risk, stale: through the API and the sweep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from api.lateness import sweep as deadlines
from tests.integration.conftest import Api, shipment_body


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def _changes(client, after: int = 0) -> list[dict]:
    return (await client.get("/v1/changes", params={"after": after})).json()["items"]


async def test_a_promise_that_passes_undelivered_is_recorded_once_with_a_late_change(api: Api, pool: asyncpg.Pool):
    _, customer = await api.customer()
    now = datetime.now(UTC)
    due = (
        await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(now - timedelta(minutes=5))))
    ).json()
    future = (
        await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(now + timedelta(days=1))))
    ).json()
    await customer.post(
        f"/v1/shipments/{due['id']}/events",
        json={
            "status": "in_transit",
            "occurred_at": _iso(now - timedelta(hours=1)),
            "location": {"city": "Lyon", "country": "FR"},
        },
    )

    assert await deadlines.sweep(pool, now) == 1
    assert await deadlines.sweep(pool, now + timedelta(seconds=1)) == 0

    records = await pool.fetch("select * from late_deliveries")
    assert [(r["shipment_id"], r["detected_by"], r["status_at_detection"]) for r in records] == [
        (due["id"], "deadline", "in_transit")
    ]
    assert records[0]["location_at_detection"] == {"city": "Lyon", "country": "FR"}
    late = [c for c in await _changes(customer) if c["type"] == "late"]
    assert [c["shipment"]["id"] for c in late] == [due["id"]]
    assert late[0]["late_delivery"]["detected_by"] == "deadline"
    assert late[0]["shipment"]["late"] is True
    assert (await customer.get(f"/v1/shipments/{future['id']}")).json()["late"] is False


async def test_three_sweepers_at_once_record_each_broken_promise_exactly_once(api: Api, database_url: str):
    _, customer = await api.customer()
    now = datetime.now(UTC)
    batch = [
        {"carrier": "dhl", "tracking_number": f"DUE{i:05d}", "promised_by": _iso(now - timedelta(seconds=i + 1))}
        for i in range(300)
    ]
    for body in batch:
        assert (await customer.post("/v1/shipments", json=body)).status_code == 201
    # three pools: three independent sweepers, as in three processes
    pools = [await asyncpg.create_pool(database_url, min_size=1, max_size=2) for _ in range(3)]
    try:
        # small batches, so the three interleave on the same due rows
        counts = await asyncio.gather(*(deadlines.sweep(p, now, batch=10) for p in pools))
        assert sum(counts) == 300
        assert await pools[0].fetchval("select count(*) from late_deliveries") == 300
        assert await pools[0].fetchval("select count(*) from changes where kind = 'late'") == 300
    finally:
        for p in pools:
            await p.close()


async def test_a_promise_revised_before_its_deadline_moves_the_deadline(api: Api, pool: asyncpg.Pool):
    _, customer = await api.customer()
    now = datetime.now(UTC)
    shipment = (
        await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(now + timedelta(minutes=1))))
    ).json()
    r = await customer.put(
        f"/v1/shipments/{shipment['id']}/promise",
        json={"promised_by": _iso(now + timedelta(hours=2)), "reason": "customs"},
    )
    assert r.status_code == 200
    assert await deadlines.sweep(pool, now + timedelta(minutes=30)) == 0
    assert await deadlines.sweep(pool, now + timedelta(hours=3)) == 1


async def test_a_promise_revised_after_its_deadline_leaves_the_record_standing(api: Api, pool: asyncpg.Pool):
    _, customer = await api.customer()
    now = datetime.now(UTC)
    shipment = (
        await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(now - timedelta(hours=1))))
    ).json()
    assert await deadlines.sweep(pool, now) == 1
    await customer.put(
        f"/v1/shipments/{shipment['id']}/promise",
        json={"promised_by": _iso(now + timedelta(days=2)), "reason": "apology"},
    )
    got = (await customer.get(f"/v1/shipments/{shipment['id']}")).json()
    assert got["late"] is True
    assert await pool.fetchval("select count(*) from late_deliveries") == 1


async def test_delivery_after_detection_closes_the_record_with_its_delay(api: Api, pool: asyncpg.Pool):
    _, customer = await api.customer()
    now = datetime.now(UTC).replace(microsecond=0)
    promised = now - timedelta(hours=3)
    shipment = (await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(promised)))).json()
    assert await deadlines.sweep(pool, now) == 1
    await customer.post(
        f"/v1/shipments/{shipment['id']}/events",
        json={"status": "delivered", "occurred_at": _iso(promised + timedelta(hours=2))},
    )
    record = await pool.fetchrow("select * from late_deliveries")
    assert record["detected_by"] == "deadline"
    assert record["delivered_at"] == promised + timedelta(hours=2)
    assert record["delay_seconds"] == 7200
    assert record["closed_at"] is not None
    # found at the deadline: delivery completes the record, no second announcement
    assert [c["type"] for c in await _changes(customer)] == ["created", "late", "event"]


async def test_returned_or_cancelled_closes_the_record_without_a_delivery(api: Api, pool: asyncpg.Pool):
    _, customer = await api.customer()
    now = datetime.now(UTC)
    shipment = (
        await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(now - timedelta(hours=1))))
    ).json()
    assert await deadlines.sweep(pool, now) == 1
    await customer.post(
        f"/v1/shipments/{shipment['id']}/events",
        json={"status": "returned_to_sender", "occurred_at": _iso(now)},
    )
    record = await pool.fetchrow("select * from late_deliveries")
    assert record["closed_at"] is not None and record["delivered_at"] is None


async def test_a_backfilled_past_promise_delivered_late_gets_its_record_at_delivery(api: Api, pool: asyncpg.Pool):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body(promised_by="2026-01-01T12:00:00Z"))).json()
    await customer.post(
        f"/v1/shipments/{shipment['id']}/events",
        json={"status": "delivered", "occurred_at": "2026-01-02T12:00:00Z"},
    )
    record = await pool.fetchrow("select * from late_deliveries")
    assert record["detected_by"] == "delivery" and record["delay_seconds"] == 86400


async def test_an_estimate_after_the_promise_turns_it_at_risk_and_a_fitting_one_clears_it(api: Api):
    _, customer = await api.customer()
    now = datetime.now(UTC)
    promised = now + timedelta(days=2)
    shipment = (await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(promised)))).json()
    url = f"/v1/shipments/{shipment['id']}/events"
    await customer.post(
        url,
        json={
            "status": "in_transit",
            "occurred_at": _iso(now - timedelta(hours=2)),
            "estimated_delivery": _iso(promised + timedelta(hours=5)),
            "reason": "weather",
        },
    )
    assert (await customer.get(f"/v1/shipments/{shipment['id']}")).json()["at_risk"] is True
    await customer.post(
        url,
        json={
            "status": "in_transit",
            "occurred_at": _iso(now - timedelta(hours=1)),
            "estimated_delivery": _iso(promised - timedelta(hours=5)),
        },
    )
    got = (await customer.get(f"/v1/shipments/{shipment['id']}")).json()
    assert got["at_risk"] is False
    assert got["exception_reason"] == "weather"
    risk = [(c["seq"], c["shipment"]["at_risk"]) for c in await _changes(customer) if c["type"] == "at_risk"]
    assert [at_risk for _, at_risk in risk] == [True, False]


async def test_a_shipment_with_no_event_for_48_hours_is_stale_and_listed(api: Api, pool: asyncpg.Pool):
    _, customer = await api.customer()
    quiet = (await customer.post("/v1/shipments", json=shipment_body())).json()
    moving = (await customer.post("/v1/shipments", json=shipment_body())).json()
    now = datetime.now(UTC)
    await customer.post(
        f"/v1/shipments/{quiet['id']}/events",
        json={"status": "in_transit", "occurred_at": _iso(now - timedelta(hours=49))},
    )
    await customer.post(
        f"/v1/shipments/{moving['id']}/events",
        json={"status": "in_transit", "occurred_at": _iso(now - timedelta(hours=1))},
    )
    listed = (await customer.get("/v1/shipments", params={"stale": "true"})).json()["items"]
    assert [s["id"] for s in listed] == [quiet["id"]]
    assert listed[0]["stale"] is True
    assert (await customer.get(f"/v1/shipments/{moving['id']}")).json()["stale"] is False


async def test_the_running_sweeper_records_a_promise_within_a_second_of_its_deadline(api: Api, pool: asyncpg.Pool):
    """Real time, a real worker: a promise a moment ahead is recorded soon after it passes."""
    _, customer = await api.customer()
    deadline = datetime.now(UTC) + timedelta(seconds=1)
    shipment = (await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(deadline)))).json()
    worker = asyncio.create_task(deadlines.run(pool, interval=0.1))
    try:
        for _ in range(50):
            detected = await pool.fetchval(
                "select detected_at from late_deliveries where shipment_id = $1", shipment["id"]
            )
            if detected is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert detected is not None, "the worker never recorded the broken promise"
    assert timedelta(0) < detected - deadline < timedelta(seconds=1)
