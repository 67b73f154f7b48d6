"""Shipments over HTTP: create, read, ETag, list, tenancy."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import Api, problem, shipment_body


async def test_a_customer_creates_a_shipment_that_starts_as_label_created(api: Api):
    _, customer = await api.customer()
    r = await customer.post("/v1/shipments", json=shipment_body(tracking_number="jd 0146 a"))
    assert r.status_code == 201, r.text
    shipment = r.json()
    assert shipment["status"] == "label_created"
    assert shipment["tracking_number"] == "JD0146A"
    assert shipment["promised_by"] == "2030-01-10T17:00:00Z"
    assert r.headers["location"] == f"/v1/shipments/{shipment['id']}"
    got = await customer.get(f"/v1/shipments/{shipment['id']}")
    assert got.json() == shipment


async def test_a_repeated_create_with_the_same_idempotency_key_answers_the_first_shipment(api: Api):
    _, customer = await api.customer()
    body = shipment_body()
    first, second = await asyncio.gather(
        customer.post("/v1/shipments", json=body, headers={"Idempotency-Key": "k-1"}),
        customer.post("/v1/shipments", json=body, headers={"Idempotency-Key": "k-1"}),
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    listed = await customer.get("/v1/shipments")
    assert len(listed.json()["items"]) == 1


async def test_the_same_idempotency_key_with_another_body_is_refused(api: Api):
    _, customer = await api.customer()
    await customer.post("/v1/shipments", json=shipment_body(), headers={"Idempotency-Key": "k-2"})
    r = await customer.post("/v1/shipments", json=shipment_body(), headers={"Idempotency-Key": "k-2"})
    assert r.status_code == 422
    assert problem(r)["type"].endswith("idempotency-key-reused")


async def test_a_taken_tracking_number_is_a_conflict(api: Api):
    _, customer = await api.customer()
    body = shipment_body()
    assert (await customer.post("/v1/shipments", json=body)).status_code == 201
    r = await customer.post("/v1/shipments", json=body)
    assert r.status_code == 409
    problem(r)


async def test_get_answers_304_while_the_etag_still_matches(api: Api):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    url = f"/v1/shipments/{shipment['id']}"
    first = await customer.get(url)
    etag = first.headers["etag"]
    again = await customer.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    await customer.post(f"{url}/events", json={"status": "in_transit", "occurred_at": "2029-12-01T10:00:00Z"})
    changed = await customer.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


@pytest.mark.parametrize(
    "header",
    ["{etag}", "W/{etag}", '"stale-0", {etag}', "*"],
    ids=["exact", "weak", "one-of-a-list", "any"],
)
async def test_if_none_match_compares_as_rfc_9110_says(api: Api, header: str):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    url = f"/v1/shipments/{shipment['id']}"
    etag = (await customer.get(url)).headers["etag"]
    assert (await customer.get(url, headers={"If-None-Match": header.format(etag=etag)})).status_code == 304
    assert (await customer.get(url, headers={"If-None-Match": '"stale-0", W/"stale-1"'})).status_code == 200


async def test_a_customer_gets_404_for_another_accounts_shipment(api: Api):
    _, alice = await api.customer("Alice")
    _, bob = await api.customer("Bob")
    shipment = (await alice.post("/v1/shipments", json=shipment_body())).json()
    for path in ("", "/events", "/promise"):
        r = await bob.get(f"/v1/shipments/{shipment['id']}{path}")
        assert r.status_code == 404, path
        problem(r)
    r = await bob.post(
        f"/v1/shipments/{shipment['id']}/events", json={"status": "delivered", "occurred_at": "2029-12-01T10:00:00Z"}
    )
    assert r.status_code == 404
    assert (await bob.get("/v1/shipments")).json()["items"] == []
    assert (await alice.get(f"/v1/shipments/{shipment['id']}/events")).json()["items"] == []


async def test_support_reads_any_account_and_each_read_is_audited(api: Api, database_url: str):
    import asyncpg

    _, customer = await api.customer()
    support = await api.role("support")
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    r = await support.get(f"/v1/shipments/{shipment['id']}")
    assert r.status_code == 200
    assert r.json()["recipient"]["name"] == "Ana Ruiz"
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("select shipment_id, account_id from audit_log where role = 'support'")
    finally:
        await conn.close()
    assert [(row["shipment_id"], row["account_id"]) for row in rows] == [(shipment["id"], shipment["account_id"])]


async def test_a_carrier_key_cannot_read_shipments(api: Api):
    _, customer = await api.customer()
    carrier = await api.role("carrier", carrier="dhl")
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    assert (await carrier.get(f"/v1/shipments/{shipment['id']}")).status_code == 404
    assert (await carrier.get("/v1/shipments")).status_code == 404


async def test_the_list_pages_through_every_shipment_once_newest_first(api: Api):
    _, customer = await api.customer()
    created = [(await customer.post("/v1/shipments", json=shipment_body())).json()["id"] for _ in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await customer.get("/v1/shipments", params=params)).json()
        seen += [s["id"] for s in page["items"]]
        assert all("recipient" not in s for s in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_list_filters_by_status_carrier_reference_and_tracking_number(api: Api):
    _, customer = await api.customer()
    a = (await customer.post("/v1/shipments", json=shipment_body(carrier="ups", reference="r-a"))).json()
    b = (await customer.post("/v1/shipments", json=shipment_body(reference="r-b"))).json()
    await customer.post(
        f"/v1/shipments/{b['id']}/events", json={"status": "in_transit", "occurred_at": "2029-12-01T10:00:00Z"}
    )

    async def ids(**params) -> list[str]:
        r = await customer.get("/v1/shipments", params=params)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert await ids(carrier="UPS") == [a["id"]]
    assert await ids(status="in_transit") == [b["id"]]
    assert await ids(reference="r-a") == [a["id"]]
    assert await ids(tracking_number=b["tracking_number"].lower()) == [b["id"]]
    assert await ids(updated_after=a["updated_at"]) == [b["id"]]
    assert (await ids(include="recipient")) == [b["id"], a["id"]]
    with_recipient = (await customer.get("/v1/shipments", params={"include": "recipient"})).json()
    assert with_recipient["items"][0]["recipient"]["name"] == "Ana Ruiz"


async def test_late_and_at_risk_filters_agree_with_the_shipments_own_flags(api: Api):
    _, customer = await api.customer()
    past = (await customer.post("/v1/shipments", json=shipment_body(promised_by="2020-01-01T00:00:00Z"))).json()
    risky = (await customer.post("/v1/shipments", json=shipment_body())).json()
    await customer.post(
        f"/v1/shipments/{risky['id']}/events",
        json={
            "status": "in_transit",
            "occurred_at": "2029-12-01T10:00:00Z",
            "estimated_delivery": "2030-02-01T00:00:00Z",
        },
    )
    on_time = (await customer.post("/v1/shipments", json=shipment_body())).json()
    delivered_late = (
        await customer.post("/v1/shipments", json=shipment_body(promised_by="2020-01-01T00:00:00Z"))
    ).json()
    await customer.post(
        f"/v1/shipments/{delivered_late['id']}/events",
        json={"status": "delivered", "occurred_at": "2020-01-02T00:00:00Z"},
    )
    everyone = {s["id"]: s for s in (await customer.get("/v1/shipments")).json()["items"]}
    for flag in ("late", "at_risk"):
        for value in (True, False):
            listed = {
                s["id"]
                for s in (await customer.get("/v1/shipments", params={flag: str(value).lower()})).json()["items"]
            }
            assert listed == {i for i, s in everyone.items() if s[flag] is value}, (flag, value)
    assert everyone[past["id"]]["late"] and everyone[delivered_late["id"]]["late"]
    assert everyone[risky["id"]]["at_risk"] and not everyone[on_time["id"]]["late"]


async def test_a_missing_or_unknown_or_revoked_key_is_401(api: Api):
    assert problem(await api.client.get("/v1/shipments"))["status"] == 401
    assert (await api.as_key("nope").get("/v1/shipments")).status_code == 401
    account_id = await api.new_account()
    key = await api.new_key("customer", account_id)
    customer = api.as_key(key["secret"])
    assert (await customer.get("/v1/shipments")).status_code == 200
    assert (await api.admin.delete(f"/v1/keys/{key['id']}")).status_code == 204
    r = await customer.get("/v1/shipments")
    assert r.status_code == 401
    assert problem(r)["type"].endswith("unauthorized")


async def test_non_admin_keys_cannot_manage_accounts_or_keys(api: Api):
    _, customer = await api.customer()
    support = await api.role("support")
    for client in (customer, support):
        assert (await client.post("/v1/accounts", json={"name": "x"})).status_code == 404
        assert (await client.post("/v1/keys", json={"role": "admin"})).status_code == 404


async def test_health_readiness_metrics_and_the_openapi_document(api: Api):
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}
    metrics = await api.client.get("/metrics")
    assert "ontime_http_requests_total" in metrics.text
    schema = (await api.client.get("/docs/openapi.json")).json()
    assert "/v1/shipments" in schema["paths"]
    assert (await api.client.get("/docs")).status_code == 200
