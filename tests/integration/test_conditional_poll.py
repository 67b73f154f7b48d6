"""The conditional GET reads only what the ETag is made of: it must give the
very ETag the whole shipment gives, in every state, and tell no other account
that a shipment exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from api.shell.database import create_pool
from api.shipments import store
from api.shipments.routes import etag_of, etag_of_fields
from tests.integration.conftest import Api, problem, shipment_body

NOW = datetime.now(UTC)


async def test_the_etag_from_its_fields_is_the_etag_of_the_whole_shipment_in_every_state(
    api: Api, db: asyncpg.Connection, database_url: str
):
    account_id, customer = await api.customer()
    soon = (NOW + timedelta(days=2)).isoformat()
    made = []
    for events in (
        [],
        [
            {
                "status": "in_transit",
                "occurred_at": NOW.isoformat(),
                "event_id": "t",
                "estimated_delivery": (NOW + timedelta(days=9)).isoformat(),
            }
        ],
        [{"status": "delivered", "occurred_at": NOW.isoformat(), "event_id": "d"}],
    ):
        created = await customer.post("/v1/shipments", json=shipment_body(promised_by=soon))
        assert created.status_code == 201, created.text
        shipment_id = created.json()["id"]
        if events:
            posted = await customer.post(f"/v1/shipments/{shipment_id}/events", json=events)
            assert posted.status_code == 201, posted.text
        made.append(shipment_id)
    # a late record beside a shipment flagged late, as the sweep leaves it
    await db.execute("update shipments set late = true where id = $1", made[2])
    await db.execute(
        """insert into late_deliveries (id, shipment_id, account_id, carrier, promised_by, detected_at, detected_by)
           select 'late_' || id, id, account_id, carrier, promised_by, now(), 'delivery' from shipments where id = $1""",
        made[2],
    )
    seen = set()
    pool = await create_pool(database_url, min_size=1, max_size=1)  # reads jsonb as ontime does
    try:
        for shipment_id in made:
            shipment = await store.get(pool, shipment_id, account_id)
            fields = await store.etag_fields(pool, shipment_id, account_id)
            assert shipment is not None and fields is not None
            for now in (NOW, NOW + timedelta(days=1), NOW + timedelta(days=3), NOW + timedelta(days=30)):
                assert etag_of_fields(fields, now) == etag_of(shipment, now)
                seen.add(etag_of(shipment, now).split("-")[1])
    finally:
        await pool.close()
    assert len(seen) >= 3, seen  # the states above did turn the flags


async def test_a_conditional_get_of_another_accounts_shipment_is_a_404(api: Api):
    _, owner = await api.customer()
    _, other = await api.customer()
    shipment_id = (await owner.post("/v1/shipments", json=shipment_body())).json()["id"]
    etag = (await owner.get(f"/v1/shipments/{shipment_id}")).headers["etag"]
    answer = await other.get(f"/v1/shipments/{shipment_id}", headers={"If-None-Match": etag})
    assert answer.status_code == 404
    assert problem(answer)["status"] == 404
    star = await other.get(f"/v1/shipments/{shipment_id}", headers={"If-None-Match": "*"})
    assert star.status_code == 404
