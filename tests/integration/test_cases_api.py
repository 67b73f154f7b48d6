"""Cases and notes through the API: the desk's queue, its promises, and who sees what."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from api.cases import deadlines as case_deadlines
from api.deadlines import sweep as deadlines
from api.lateness import sweep as promises
from api.live.hub import Hub
from api.shell.auth import Principal
from tests.integration.conftest import Api, problem, shipment_body


async def _desk(api: Api):
    account_id, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    support = await api.role("support")
    return account_id, customer, shipment, support


async def _changes(client) -> list[dict]:
    return (await client.get("/v1/changes", params={"after": 0})).json()["items"]


async def test_support_opens_a_case_on_a_shipment_and_reads_it_with_the_shipments_timeline(
    api: Api, pool: asyncpg.Pool
):
    account_id, customer, shipment, support = await _desk(api)
    await customer.post(
        f"/v1/shipments/{shipment['id']}/events",
        json={"status": "in_transit", "occurred_at": "2030-01-02T10:00:00Z"},
    )

    r = await support.post(
        "/v1/cases", json={"shipment_id": shipment["id"], "type": "delay", "priority": "high", "subject": "Where?"}
    )

    assert r.status_code == 201, r.text
    case = r.json()
    assert (case["account_id"], case["status"], case["priority"], case["first_response_at"]) == (
        account_id,
        "open",
        "high",
        None,
    )
    opened = datetime.fromisoformat(case["opened_at"])
    assert datetime.fromisoformat(case["response_due"]) - opened == timedelta(hours=4)
    assert case["next_due"] == case["response_due"]
    detail = (await support.get(f"/v1/cases/{case['id']}")).json()
    assert [e["status"] for e in detail["timeline"]] == ["in_transit"]
    assert detail["comments"] == []
    audited = await pool.fetch(
        "select action, account_id, shipment_id from audit_log where action like '%/cases%' order by id"
    )
    assert [(a["action"].split()[0], a["account_id"], a["shipment_id"]) for a in audited] == [
        ("POST", account_id, shipment["id"]),
        ("GET", account_id, shipment["id"]),
    ]


async def test_customer_and_carrier_keys_find_no_case_or_note_endpoint(api: Api):
    account_id, customer, shipment, support = await _desk(api)
    carrier = await api.role("carrier", carrier="dhl")
    case = (
        await support.post("/v1/cases", json={"account_id": account_id, "type": "other", "subject": "Billing"})
    ).json()

    for client in (customer, carrier):
        assert (await client.get("/v1/cases")).status_code == 404
        assert (await client.get(f"/v1/cases/{case['id']}")).status_code == 404
        assert (
            await client.post("/v1/cases", json={"account_id": account_id, "type": "other", "subject": "x"})
        ).status_code == 404
        assert (await client.get(f"/v1/shipments/{shipment['id']}/notes")).status_code == 404
        assert (await client.post(f"/v1/shipments/{shipment['id']}/notes", json={"body": "x"})).status_code == 404
        assert (await client.get(f"/v1/accounts/{account_id}/case-policies")).status_code == 404


async def test_a_note_is_read_by_support_and_never_reaches_the_customers_feed(api: Api, pool: asyncpg.Pool):
    account_id, customer, shipment, support = await _desk(api)

    r = await support.post(f"/v1/shipments/{shipment['id']}/notes", json={"body": "Recipient rude on the phone"})

    assert r.status_code == 201, r.text
    notes = (await support.get(f"/v1/shipments/{shipment['id']}/notes")).json()["items"]
    assert [n["body"] for n in notes] == ["Recipient rude on the phone"]
    feed = (await customer.get("/v1/changes", params={"after": 0})).content
    assert b"rude" not in feed
    assert await pool.fetchval("select count(*) from changes where body::text like '%rude%'") == 0
    audited = await pool.fetch("select action, account_id from audit_log where action like '%/notes'")
    assert {(a["action"].split()[0], a["account_id"]) for a in audited} == {("POST", account_id), ("GET", account_id)}


async def test_a_case_moves_through_its_states_and_refuses_a_move_it_may_not_make(api: Api):
    _, _, shipment, support = await _desk(api)
    case = (
        await support.post("/v1/cases", json={"shipment_id": shipment["id"], "type": "damage", "subject": "Broken"})
    ).json()

    refused = await support.patch(f"/v1/cases/{case['id']}", json={"status": "closed"})
    assert refused.status_code == 409
    assert problem(refused)["errors"][0]["path"] == "$.status"

    statuses = []
    for status in ("in_progress", "waiting_on_customer", "resolved", "closed", "open"):
        r = await support.patch(f"/v1/cases/{case['id']}", json={"status": status})
        assert r.status_code == 200, r.text
        statuses.append(r.json()["status"])
    assert statuses == ["in_progress", "waiting_on_customer", "resolved", "closed", "open"]
    reopened = r.json()
    assert reopened["first_response_at"] is not None
    assert (reopened["resolved_at"], reopened["closed_at"]) == (None, None)


async def test_the_first_comment_is_the_first_response_and_a_later_one_does_not_move_it(api: Api):
    _, _, shipment, support = await _desk(api)
    case = (
        await support.post("/v1/cases", json={"shipment_id": shipment["id"], "type": "lost", "subject": "Gone"})
    ).json()

    await support.post(f"/v1/cases/{case['id']}/comments", json={"body": "Calling the carrier"})
    first = (await support.get(f"/v1/cases/{case['id']}")).json()
    await support.post(f"/v1/cases/{case['id']}/comments", json={"body": "Still looking"})
    second = (await support.get(f"/v1/cases/{case['id']}")).json()

    assert first["case"]["first_response_at"] is not None
    assert second["case"]["first_response_at"] == first["case"]["first_response_at"]
    assert [c["body"] for c in second["comments"]] == ["Calling the carrier", "Still looking"]
    assert second["case"]["next_due"] == second["case"]["resolution_due"]


async def test_two_agents_updating_at_once_from_the_same_version_get_one_success_and_one_conflict(api: Api):
    _, _, shipment, support = await _desk(api)
    other = await api.role("support")
    case = (
        await support.post("/v1/cases", json={"shipment_id": shipment["id"], "type": "delay", "subject": "Late"})
    ).json()

    answers = await asyncio.gather(
        support.patch(
            f"/v1/cases/{case['id']}", json={"status": "in_progress"}, headers={"If-Match": f'"{case["version"]}"'}
        ),
        other.patch(f"/v1/cases/{case['id']}", json={"status": "resolved"}, headers={"If-Match": str(case["version"])}),
    )

    assert sorted(a.status_code for a in answers) == [200, 409]
    final = (await support.get(f"/v1/cases/{case['id']}")).json()["case"]
    winner = next(a for a in answers if a.status_code == 200).json()
    assert (final["status"], final["version"]) == (winner["status"], case["version"] + 1)


async def test_concurrent_updates_without_a_version_lose_none(api: Api):
    _, _, shipment, support = await _desk(api)
    case = (
        await support.post("/v1/cases", json={"shipment_id": shipment["id"], "type": "delay", "subject": "Late"})
    ).json()
    assignees = [(await api.new_key("support"))["id"] for _ in range(5)]

    answers = await asyncio.gather(
        *(support.patch(f"/v1/cases/{case['id']}", json={"assignee_key": key}) for key in assignees)
    )

    won = [a.json()["assignee_key"] for a in answers if a.status_code == 200]
    assert all(a.status_code in (200, 409) for a in answers)
    final = (await support.get(f"/v1/cases/{case['id']}")).json()["case"]
    # every update that answered 200 was saved, in turn: the version counts them
    assert final["version"] == 1 + len(won)
    assert final["assignee_key"] in won


async def test_the_queue_sorts_by_the_deadline_nearest_to_breach_and_pages_by_keyset(api: Api):
    account_id, _, _, support = await _desk(api)
    opened = []
    for priority in ("low", "urgent", "normal", "high"):
        r = await support.post(
            "/v1/cases", json={"account_id": account_id, "type": "other", "priority": priority, "subject": priority}
        )
        opened.append(r.json())
    done = opened[0]
    await support.patch(f"/v1/cases/{done['id']}", json={"status": "resolved"})

    seen, cursor = [], None
    while True:
        params = {"account_id": account_id, "limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await support.get("/v1/cases", params=params)).json()
        seen.extend(c["subject"] for c in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == ["urgent", "high", "normal", "low"]
    # a cursor whose instant is past the year 9999 (18 digits: beyond the documented shape too) is a 400, not a 500
    beyond = await support.get("/v1/cases", params={"cursor": "540465965455421821.cas_01jd7c2m8q4w6e8r0t2y4u6i8o"})
    assert beyond.status_code == 400 and beyond.json()["errors"][0]["path"] == "query.cursor"
    only_open = (await support.get("/v1/cases", params={"account_id": account_id, "status": "open"})).json()
    assert [c["subject"] for c in only_open["items"]] == ["urgent", "high", "normal"]


async def test_a_breached_response_deadline_is_recorded_once_and_reaches_the_customers_feed(
    api: Api, pool: asyncpg.Pool
):
    account_id, customer, shipment, support = await _desk(api)
    case = (
        await support.post(
            "/v1/cases", json={"shipment_id": shipment["id"], "type": "delay", "priority": "urgent", "subject": "Late"}
        )
    ).json()
    after = datetime.fromisoformat(case["response_due"]) + timedelta(seconds=1)

    first = await deadlines.sweep(pool, after, case_deadlines.KINDS)
    again = await deadlines.sweep(pool, after + timedelta(minutes=1), case_deadlines.KINDS)

    assert first == {"case_response_deadline": 1, "case_resolution_deadline": 0}
    assert again == {"case_response_deadline": 0, "case_resolution_deadline": 0}
    breached = [c for c in await _changes(customer) if c["type"] == "case_breached"]
    assert [(c["case"]["id"], c["deadline"]) for c in breached] == [(case["id"], "response")]
    listed = (await support.get("/v1/cases", params={"breached": "true", "account_id": account_id})).json()
    assert [c["id"] for c in listed["items"]] == [case["id"]]
    kinds = [c["type"] for c in await _changes(customer) if c["type"].startswith("case")]
    assert kinds == ["case_opened", "case_breached"]


async def test_a_case_on_an_account_reaches_the_feed_with_no_shipment(api: Api, pool: asyncpg.Pool):
    account_id, customer, _, support = await _desk(api)

    await support.post("/v1/cases", json={"account_id": account_id, "type": "complaint", "subject": "Service"})

    opened = [c for c in await _changes(customer) if c["type"] == "case_opened"]
    assert [c["case"]["shipment_id"] for c in opened] == [None]
    assert await pool.fetchval("select count(*) from changes where shipment_id is null") == 1


async def test_a_broken_promise_and_an_exception_open_a_case_when_the_account_asks(api: Api, pool: asyncpg.Pool):
    account_id, customer, _, support = await _desk(api)
    r = await support.put(
        f"/v1/accounts/{account_id}/case-automatic",
        json={"late": {"priority": "high"}, "exception": {}},
    )
    assert r.status_code == 200, r.text
    now = datetime.now(UTC)
    late = (
        await customer.post("/v1/shipments", json=shipment_body(promised_by=(now - timedelta(minutes=1)).isoformat()))
    ).json()
    damaged = (await customer.post("/v1/shipments", json=shipment_body())).json()
    for _ in range(2):  # a second exception opens no second case
        await customer.post(
            f"/v1/shipments/{damaged['id']}/events",
            json={"status": "exception", "reason": "damaged", "occurred_at": now.isoformat()},
        )

    assert await promises.sweep(pool, now) == 1
    opened = await pool.fetch("select shipment_id, type, priority, opened_by from cases order by opened_by")
    assert [tuple(r) for r in opened] == [
        (damaged["id"], "damage", "normal", "exception"),
        (late["id"], "delay", "high", "late"),
    ]


async def test_an_accounts_own_promise_sets_a_new_cases_deadlines(api: Api):
    account_id, _, shipment, support = await _desk(api)

    r = await support.put(
        f"/v1/accounts/{account_id}/case-policies",
        json={
            "items": [
                {"type": "lost", "priority": "normal", "respond_within_seconds": 600, "resolve_within_seconds": 3600}
            ]
        },
    )
    assert r.status_code == 200, r.text
    case = (
        await support.post("/v1/cases", json={"shipment_id": shipment["id"], "type": "lost", "subject": "Gone"})
    ).json()

    opened = datetime.fromisoformat(case["opened_at"])
    assert datetime.fromisoformat(case["response_due"]) - opened == timedelta(minutes=10)
    assert datetime.fromisoformat(case["resolution_due"]) - opened == timedelta(hours=1)
    own = [p for p in r.json()["items"] if p["overridden"]]
    assert [(p["type"], p["priority"]) for p in own] == [("lost", "normal")]


async def test_bad_input_names_the_field_and_writes_nothing(api: Api, pool: asyncpg.Pool):
    account_id, _, shipment, support = await _desk(api)

    both = await support.post(
        "/v1/cases", json={"shipment_id": shipment["id"], "account_id": account_id, "type": "lost", "subject": "x"}
    )
    unknown = await support.post("/v1/cases", json={"shipment_id": "shp_nope", "type": "lost", "subject": "x"})
    bad_type = await support.post("/v1/cases", json={"account_id": account_id, "type": "fire", "subject": "x"})
    not_support = await support.post(
        "/v1/cases", json={"account_id": account_id, "type": "lost", "subject": "x", "assignee_key": "key_nope"}
    )

    assert (both.status_code, problem(both)["errors"][0]["path"]) == (400, "$.shipment_id")
    assert (unknown.status_code, problem(unknown)["errors"][0]["path"]) == (404, "$.shipment_id")
    assert (bad_type.status_code, problem(bad_type)["errors"][0]["path"]) == (400, "$.type")
    assert (not_support.status_code, problem(not_support)["errors"][0]["path"]) == (404, "$.assignee_key")
    assert await pool.fetchval("select count(*) from cases") == 0


async def test_a_breached_case_on_an_account_reaches_a_live_subscriber_of_that_account(api: Api, pool: asyncpg.Pool):
    account_id, _, _, support = await _desk(api)
    case = (
        await support.post(
            "/v1/cases", json={"account_id": account_id, "type": "other", "priority": "urgent", "subject": "Billing"}
        )
    ).json()
    hub = Hub(pool, poll_interval=0.01)
    await hub.start()
    try:
        own = Principal(key_id="key_c", role="customer", account_id=account_id, carrier=None)
        subscriber = hub.connect(own, b"c")
        await hub.subscribe(subscriber, accounts=[account_id])
        await deadlines.sweep(
            pool, datetime.fromisoformat(case["response_due"]) + timedelta(seconds=1), case_deadlines.KINDS
        )
        await hub.catch_up()
        kinds = [text for _, text in subscriber.outbox if '"case_breached"' in text]
        assert len(kinds) == 1 and case["id"] in kinds[0]
    finally:
        await hub.stop()


async def test_an_admin_reads_an_account_feed_holding_a_case_on_no_shipment(api: Api, pool: asyncpg.Pool):
    account_id, _, _, support = await _desk(api)
    opened = await support.post("/v1/cases", json={"account_id": account_id, "type": "other", "subject": "Billing"})
    assert opened.status_code == 201, opened.text
    admin = await api.role("admin")
    answer = await admin.get("/v1/changes", params={"after": 0, "account_id": account_id})
    assert answer.status_code == 200, answer.text
    assert opened.json()["id"] in answer.text
    audited = await pool.fetch("select account_id from audit_log where action like 'GET /v1/changes%'")
    assert [row["account_id"] for row in audited] == [account_id]
