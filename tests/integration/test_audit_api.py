"""GET /v1/audit for admins and GET /v1/access-log for a customer key."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.integration.conftest import Api, shipment_body


async def test_the_access_log_shows_support_reads_of_its_own_shipments_and_never_another_accounts(
    api: Api, db: asyncpg.Connection
):
    _, acme = await api.customer("Acme")
    _, globex = await api.customer("Globex")
    mine = (await acme.post("/v1/shipments", json=shipment_body())).json()["id"]
    theirs = (await globex.post("/v1/shipments", json=shipment_body())).json()["id"]
    support = await api.role("support")
    assert (await support.get(f"/v1/shipments/{mine}")).status_code == 200
    assert (await support.get(f"/v1/shipments/{theirs}")).status_code == 200
    page = (await acme.get("/v1/access-log")).json()
    # newest first: the support read, then the admin creating its key and the account itself
    assert [(e["role"], e["action"], e["shipment_ids"]) for e in page["items"]] == [
        ("support", f"GET /v1/shipments/{mine}", [mine]),
        ("admin", "POST /v1/keys", []),
        ("admin", "POST /v1/accounts", []),
    ]
    assert "client_addr" not in page["items"][0] and "user_agent" not in page["items"][0]
    assert page["next_cursor"] is None
    # other roles do not reach it
    assert (await support.get("/v1/access-log")).status_code == 404


async def test_the_audit_log_filters_by_role_account_shipment_and_action_prefix(api: Api):
    account_id, acme = await api.customer("Acme")
    sid = (await acme.post("/v1/shipments", json=shipment_body())).json()["id"]
    support = await api.role("support")
    await support.get(f"/v1/shipments/{sid}")
    await support.get(f"/v1/shipments/{sid}/events")
    got = await api.admin.get(
        "/v1/audit", params={"role": "support", "account_id": account_id, "shipment_id": sid, "action": "GET /v1/ship"}
    )
    assert got.status_code == 200, got.text
    assert [e["action"] for e in got.json()["items"]] == [f"GET /v1/shipments/{sid}/events", f"GET /v1/shipments/{sid}"]
    assert (await acme.get("/v1/audit")).status_code == 404
    assert (await api.admin.get("/v1/audit", params={"since": "yesterday"})).status_code == 400


async def test_pages_follow_each_other_with_no_gap_and_no_duplicate_while_rows_are_added(api: Api):
    _, acme = await api.customer("Acme")
    sid = (await acme.post("/v1/shipments", json=shipment_body())).json()["id"]
    support = await api.role("support")
    for _ in range(12):
        await support.get(f"/v1/shipments/{sid}")
    first = (await acme.get("/v1/access-log", params={"limit": 5})).json()
    expected = {e["id"] for e in first["items"]}
    seen = [e["id"] for e in first["items"]]
    cursor = first["next_cursor"]

    async def read_more() -> None:
        for _ in range(6):
            await support.get(f"/v1/shipments/{sid}")

    writer = asyncio.create_task(read_more())
    while cursor is not None:
        page = (await acme.get("/v1/access-log", params={"limit": 5, "cursor": cursor})).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
    await writer
    assert len(seen) == len(set(seen)) == 12 + 2  # and the admin's two: the account and its key
    assert seen == sorted(seen, reverse=True) and expected <= set(seen)
