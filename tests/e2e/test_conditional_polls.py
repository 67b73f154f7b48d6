"""A conditional GET on one process right after a change made on another is
never answered 304: the ETag is read from the database, not from a cache."""

from __future__ import annotations

from tests.e2e.conftest import Server
from tests.e2e.test_processes import new_customer_key

EVENT = {"status": "in_transit", "occurred_at": "2029-12-01T10:00:00Z", "location": {"city": "Lyon", "country": "FR"}}
SHIPMENT = {
    "carrier": "dhl",
    "tracking_number": "POLL0001",
    "promised_by": "2030-01-10T18:00:00Z",
    "origin": {"city": "Zaragoza", "country": "ES"},
    "destination": {"city": "Lyon", "country": "FR"},
}


async def test_a_shipment_changed_on_one_process_is_never_answered_304_by_the_other(two_servers: list[Server]):
    a, b = two_servers
    async with a.client() as admin:
        secret = (await new_customer_key(admin))["secret"]
    async with a.client(secret) as on_a, b.client(secret) as on_b:
        created = await on_a.post("/v1/shipments", json=SHIPMENT)
        assert created.status_code == 201, created.text
        url = f"/v1/shipments/{created.json()['id']}"
        etag = (await on_b.get(url)).headers["etag"]
        for n in range(5):  # each time: both processes have just answered 304 for this ETag
            for client in (on_a, on_b):
                assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
            writer, reader = (on_a, on_b) if n % 2 == 0 else (on_b, on_a)
            posted = await writer.post(f"{url}/events", json=EVENT | {"event_id": f"e{n}"})
            assert posted.status_code == 201, posted.text
            changed = await reader.get(url, headers={"If-None-Match": etag})
            assert changed.status_code == 200, changed.text
            assert changed.headers["etag"] != etag
            assert changed.json()["version"] == posted.json()["shipment"]["version"]
            etag = changed.headers["etag"]
        revised = await on_a.put(
            f"{url}/promise", json={"promised_by": "2030-02-01T18:00:00Z", "reason": "customer asked"}
        )
        assert revised.status_code == 200, revised.text
        assert (await on_b.get(url, headers={"If-None-Match": etag})).status_code == 200
