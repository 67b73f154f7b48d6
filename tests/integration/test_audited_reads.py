"""Reads by a key from outside the shipment's account (support, admin) are
audited in the transaction that answers them; a customer's own reads are not."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.conftest import Api, shipment_body

READS = ["/v1/shipments/{id}", "/v1/shipments/{id}/events", "/v1/shipments/{id}/promise"]


@pytest.mark.parametrize("role", ["support", "admin"])
@pytest.mark.parametrize("path", READS)
async def test_a_read_from_outside_the_account_writes_one_row_naming_who_what_and_from_where(
    api: Api, db: asyncpg.Connection, role: str, path: str
):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    staff = api.admin if role == "admin" else await api.role(role)
    before = await db.fetchval("select coalesce(max(id), 0) from audit_log")
    url = path.format(id=shipment["id"])
    r = await staff.get(url, headers={"User-Agent": "desk/1"})
    assert r.status_code == 200, r.text
    rows = await db.fetch(
        "select role, action, account_id, shipment_id, shipment_ids, user_agent, client_addr"
        " from audit_log where id > $1",
        before,
    )
    assert [dict(row) for row in rows] == [
        {
            "role": role,
            "action": f"GET {url}",
            "account_id": shipment["account_id"],
            "shipment_id": shipment["id"],
            "shipment_ids": [shipment["id"]],
            "user_agent": "desk/1",
            "client_addr": "127.0.0.1",
        }
    ]


@pytest.mark.parametrize("path", [*READS, "/v1/shipments"])
async def test_a_customer_reading_its_own_shipments_writes_no_audit_row(api: Api, db: asyncpg.Connection, path: str):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    before = await db.fetchval("select count(*) from audit_log")
    assert (await customer.get(path.format(id=shipment["id"]))).status_code == 200
    assert await db.fetchval("select count(*) from audit_log") == before


async def test_a_list_by_support_writes_one_row_per_account_with_the_ids_it_answered(api: Api, db: asyncpg.Connection):
    acme_id, acme = await api.customer("Acme")
    globex_id, globex = await api.customer("Globex")
    a1 = (await acme.post("/v1/shipments", json=shipment_body())).json()["id"]
    a2 = (await acme.post("/v1/shipments", json=shipment_body())).json()["id"]
    g1 = (await globex.post("/v1/shipments", json=shipment_body())).json()["id"]
    support = await api.role("support")
    before = await db.fetchval("select coalesce(max(id), 0) from audit_log")
    r = await support.get("/v1/shipments", params={"limit": 10})
    assert r.status_code == 200
    rows = await db.fetch(
        "select account_id, shipment_ids, query from audit_log where id > $1 order by account_id", before
    )
    assert sorted((row["account_id"], sorted(row["shipment_ids"]), row["query"]) for row in rows) == sorted(
        [(acme_id, sorted([a1, a2]), "limit=10"), (globex_id, [g1], "limit=10")]
    )


async def test_a_read_whose_audit_row_cannot_be_written_fails_and_answers_nothing(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    support = await api.role("support")
    before = await db.fetchval("select count(*) from audit_log")
    await db.execute(
        """
        create function refuse_audit() returns trigger language plpgsql as $$
        begin raise exception 'audit refused for the test'; end $$;
        create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit();
        """
    )
    urls = [*READS, "/v1/shipments", "/v1/late-deliveries", "/v1/changes", "/v1/reports/on-time?month=2030-01"]
    for url in urls:
        r = await support.get(url.format(id=shipment["id"]))
        assert r.status_code == 503, r.text
        assert "Ana Ruiz" not in r.text and shipment["id"] not in r.text
    assert await db.fetchval("select count(*) from audit_log") == before


async def late_delivery(customer) -> dict:
    """A shipment delivered a day after its promise: one closed lateness record."""
    shipment = (await customer.post("/v1/shipments", json=shipment_body(promised_by="2026-10-10T12:00:00Z"))).json()
    r = await customer.post(
        f"/v1/shipments/{shipment['id']}/events", json={"status": "delivered", "occurred_at": "2026-10-11T12:00:00Z"}
    )
    assert r.status_code == 201, r.text
    return shipment


@pytest.mark.parametrize("path", ["/v1/late-deliveries", "/v1/changes"])
async def test_a_list_from_outside_the_accounts_writes_one_row_per_account_it_answered(
    api: Api, db: asyncpg.Connection, path: str
):
    acme_id, acme = await api.customer("Acme")
    globex_id, globex = await api.customer("Globex")
    at_acme, at_globex = await late_delivery(acme), await late_delivery(globex)
    support = await api.role("support")
    before = await db.fetchval("select coalesce(max(id), 0) from audit_log")
    r = await support.get(path, params={"limit": 100})
    assert r.status_code == 200, r.text
    rows = await db.fetch("select account_id, shipment_ids, action, query from audit_log where id > $1", before)
    assert sorted(tuple(row) for row in rows) == sorted(
        [
            (acme_id, [at_acme["id"]], f"GET {path}", "limit=100"),
            (globex_id, [at_globex["id"]], f"GET {path}", "limit=100"),
        ]
    )
    # the customer's own list writes none
    assert (await acme.get(path)).status_code == 200
    assert await db.fetchval("select count(*) from audit_log where id > $1", before) == 2


async def test_a_report_by_an_admin_writes_one_row_for_the_account_it_asked_about(api: Api, db: asyncpg.Connection):
    acme_id, acme = await api.customer("Acme")
    await late_delivery(acme)
    before = await db.fetchval("select coalesce(max(id), 0) from audit_log")
    params = {"month": "2026-10", "account_id": acme_id}
    assert (await api.admin.get("/v1/reports/on-time", params=params)).status_code == 200
    assert (await acme.get("/v1/reports/on-time", params={"month": "2026-10"})).status_code == 200
    rows = await db.fetch("select account_id, role, action, query from audit_log where id > $1", before)
    assert [tuple(row) for row in rows] == [
        (acme_id, "admin", "GET /v1/reports/on-time", f"month=2026-10&account_id={acme_id}")
    ]


async def test_each_write_by_an_admin_into_an_account_writes_one_row_in_its_transaction(
    api: Api, db: asyncpg.Connection
):
    account_id, customer = await api.customer()
    before = await db.fetchval("select coalesce(max(id), 0) from audit_log")
    created = await api.admin.post("/v1/shipments", json=shipment_body(account_id=account_id))
    assert created.status_code == 201, created.text
    shipment = created.json()
    sid = shipment["id"]
    event = {"status": "in_transit", "occurred_at": "2030-01-02T10:00:00Z"}
    assert (await api.admin.post(f"/v1/shipments/{sid}/events", json=event)).status_code == 201
    batch = [{**event, "carrier": "dhl", "tracking_number": shipment["tracking_number"], "status": "out_for_delivery"}]
    assert (await api.admin.post("/v1/events", json=batch)).status_code == 200
    promise = {"promised_by": "2030-01-12T18:00:00Z", "reason": "strike"}
    assert (await api.admin.put(f"/v1/shipments/{sid}/promise", json=promise)).status_code == 200
    rows = await db.fetch("select action, account_id, shipment_ids from audit_log where id > $1 order by id", before)
    assert [tuple(row) for row in rows] == [
        ("POST /v1/shipments", account_id, [sid]),
        (f"POST /v1/shipments/{sid}/events", account_id, [sid]),
        ("POST /v1/events", account_id, [sid]),
        (f"PUT /v1/shipments/{sid}/promise", account_id, [sid]),
    ]
    # the customer's own writes write none
    assert (
        await customer.post(f"/v1/shipments/{sid}/events", json={**event, "status": "delivered"})
    ).status_code == 201
    assert await db.fetchval("select count(*) from audit_log where id > $1", before) == 4


async def test_admin_actions_on_accounts_and_keys_are_audited(api: Api, db: asyncpg.Connection):
    account_id = await api.new_account("Acme")
    key = await api.new_key("customer", account_id)
    assert (await api.admin.delete(f"/v1/keys/{key['id']}")).status_code == 204
    rows = await db.fetch("select role, action, account_id, query from audit_log order by id")
    assert [tuple(row) for row in rows] == [
        ("admin", "POST /v1/accounts", account_id, None),
        ("admin", "POST /v1/keys", account_id, f"key {key['id']}"),
        ("admin", f"DELETE /v1/keys/{key['id']}", account_id, f"key {key['id']}"),
    ]
