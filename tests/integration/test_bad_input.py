"""Bad input over HTTP: every refusal is a 4xx problem naming the field, and nothing is written.

Each test counts the rows of every table a write could touch, straight from the
database, before and after the refused request: a 4xx must leave them all as
they were (a 2xx means committed; anything else means nothing happened).
"""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from tests.integration.conftest import Api, problem, shipment_body

PROBLEMS = "https://ontime.dev/problems/"
MiB = 1024 * 1024
WRITTEN_TABLES = ("shipments", "events", "changes", "promise_revisions", "idempotency_keys", "late_deliveries")


async def row_counts(db: asyncpg.Connection) -> dict[str, int]:
    return {table: await db.fetchval(f"select count(*) from {table}") for table in WRITTEN_TABLES}


def assert_problem(response: httpx.Response, status: int, slug: str, *paths: str) -> dict:
    """The response is an RFC 9457 problem of this status and type, naming exactly these fields."""
    assert response.status_code == status, response.text
    body = problem(response)
    assert body["type"] == PROBLEMS + slug
    assert body["title"]
    if paths:
        assert [e["path"] for e in body["errors"]] == list(paths), body
        assert all(e["message"] for e in body["errors"])
    return body


def event(**overrides) -> dict:
    return {"status": "in_transit", "occurred_at": "2029-12-01T10:00:00Z", **overrides}


async def a_shipment(customer, **overrides) -> dict:
    r = await customer.post("/v1/shipments", json=shipment_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()


class _WithHeaders:
    """The shared client, sending exactly these headers (an Authorization of any shape)."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self._client, self._headers = client, headers

    def __getattr__(self, method: str):
        call = getattr(self._client, method)

        async def send(url: str, **kwargs):
            return await call(url, headers=self._headers, **kwargs)

        return send


# -- create ------------------------------------------------------------------------

CREATE_CASES = [
    pytest.param({"carrier": 42}, "$.carrier", id="carrier-not-a-string"),
    pytest.param({"promised_by": 1767225600}, "$.promised_by", id="promised_by-a-number"),
    pytest.param({"promised_by": "next tuesday"}, "$.promised_by", id="promised_by-not-a-timestamp"),
    pytest.param({"promised_by": "2030-01-10T18:00:00"}, "$.promised_by", id="promised_by-naive"),
    pytest.param({"promised_from": "2030-01-09T18:00:00"}, "$.promised_from", id="promised_from-naive"),
    pytest.param({"promised_from": "2030-01-10T18:00:01+01:00"}, "$.promised_from", id="window-start-after-end"),
    pytest.param({"tracking_number": ""}, "$.tracking_number", id="tracking_number-empty"),
    pytest.param({"tracking_number": "A" * 65}, "$.tracking_number", id="tracking_number-too-long"),
    pytest.param({"tracking_number": "#!?"}, "$.tracking_number", id="tracking_number-bad-characters"),
    pytest.param({"carrier": ""}, "$.carrier", id="carrier-empty"),
    pytest.param({"reference": "r" * 201}, "$.reference", id="reference-too-long"),
    pytest.param({"colour": "red"}, "$.colour", id="unknown-field"),
    pytest.param({"origin": {"city": "Zaragoza", "street": "Coso 1"}}, "$.origin.street", id="unknown-nested-field"),
    pytest.param({"destination": {"country": "FRA"}}, "$.destination.country", id="country-not-two-letters"),
    pytest.param({"recipient": {"email": "not an address"}}, "$.recipient.email", id="recipient-email-malformed"),
    pytest.param({"metadata": ["not", "an", "object"]}, "$.metadata", id="metadata-not-an-object"),
]


@pytest.mark.parametrize(("overrides", "path"), CREATE_CASES)
async def test_an_invalid_create_is_a_400_naming_the_field_and_writes_nothing(
    api: Api, db: asyncpg.Connection, overrides: dict, path: str
):
    _, customer = await api.customer()
    before = await row_counts(db)
    r = await customer.post("/v1/shipments", json=shipment_body(**overrides), headers={"Idempotency-Key": "create-1"})
    assert_problem(r, 400, "invalid-request", path)
    assert await row_counts(db) == before


@pytest.mark.parametrize("missing", ["carrier", "tracking_number", "promised_by"])
async def test_a_create_missing_a_required_field_names_that_field(api: Api, db: asyncpg.Connection, missing: str):
    _, customer = await api.customer()
    body = shipment_body()
    del body[missing]
    before = await row_counts(db)
    r = await customer.post("/v1/shipments", json=body)
    assert_problem(r, 400, "invalid-request", f"$.{missing}")
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"carrier": "dhl", "tracking_number":', id="truncated"),
        pytest.param(b"{'carrier': 'dhl'}", id="single-quotes"),
        pytest.param(
            b'{"carrier": "dhl", "tracking_number": "TRAIL1", "promised_by": "2030-01-10T18:00:00Z"} {}',
            id="trailing-data",
        ),
        pytest.param(b"", id="empty-body"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
    ],
)
async def test_malformed_json_on_create_is_a_400_problem_and_writes_nothing(
    api: Api, db: asyncpg.Connection, raw: bytes
):
    _, customer = await api.customer()
    before = await row_counts(db)
    r = await customer.post(
        "/v1/shipments", content=raw, headers={"content-type": "application/json", "Idempotency-Key": "m-1"}
    )
    body = assert_problem(r, 400, "malformed-json")
    assert body["detail"]
    assert await row_counts(db) == before


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"a shipment"', b"42"], ids=["array", "null", "string", "number"])
async def test_a_create_body_that_is_not_an_object_is_a_400_at_the_root(api: Api, db: asyncpg.Connection, raw: bytes):
    _, customer = await api.customer()
    before = await row_counts(db)
    r = await customer.post("/v1/shipments", content=raw, headers={"content-type": "application/json"})
    assert_problem(r, 400, "invalid-request", "$")
    assert await row_counts(db) == before


async def test_a_customer_cannot_create_a_shipment_in_another_account(api: Api, db: asyncpg.Connection):
    other_account, _ = await api.customer("Other")
    _, customer = await api.customer()
    before = await row_counts(db)
    r = await customer.post("/v1/shipments", json=shipment_body(account_id=other_account))
    assert_problem(r, 404, "not-found", "$.account_id")
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("account_id", "status", "slug"),
    [(None, 400, "invalid-request"), ("acc_does_not_exist", 404, "not-found")],
    ids=["unnamed", "unknown"],
)
async def test_an_admin_create_must_name_an_existing_account(
    api: Api, db: asyncpg.Connection, account_id, status, slug
):
    before = await row_counts(db)
    body = shipment_body() if account_id is None else shipment_body(account_id=account_id)
    r = await api.admin.post("/v1/shipments", json=body, headers={"Idempotency-Key": "admin-1"})
    assert_problem(r, status, slug, "$.account_id")
    assert await row_counts(db) == before


async def test_a_refused_create_with_an_idempotency_key_leaves_the_key_free(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    taken = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.post(
        "/v1/shipments",
        json=shipment_body(tracking_number=taken["tracking_number"]),
        headers={"Idempotency-Key": "retry-me"},
    )
    assert_problem(r, 409, "tracking-number-taken")
    assert await row_counts(db) == before
    # the key was not spent on the refusal: the corrected request goes through
    r = await customer.post("/v1/shipments", json=shipment_body(), headers={"Idempotency-Key": "retry-me"})
    assert r.status_code == 201, r.text


# -- events for one shipment -------------------------------------------------------

SINGLE_EVENT_CASES = [
    pytest.param(event(status="teleported"), "$.status", id="unknown-status"),
    pytest.param(event(status="DELIVERED"), "$.status", id="status-in-capitals"),
    pytest.param(event(status=3), "$.status", id="status-a-number"),
    pytest.param(event(occurred_at="2029-12-01T10:00:00"), "$.occurred_at", id="occurred_at-naive"),
    pytest.param(event(occurred_at="2029-12-01"), "$.occurred_at", id="occurred_at-a-date"),
    pytest.param(event(occurred_at=None), "$.occurred_at", id="occurred_at-null"),
    pytest.param(event(estimated_delivery="2030-01-01T12:00:00"), "$.estimated_delivery", id="estimate-naive"),
    pytest.param(event(reason="aliens"), "$.reason", id="unknown-reason"),
    pytest.param(event(event_id=""), "$.event_id", id="event_id-empty"),
    pytest.param(event(event_id=12345), "$.event_id", id="event_id-a-number"),
    pytest.param(event(description="d" * 2001), "$.description", id="description-too-long"),
    pytest.param(event(location={"city": "Lyon", "planet": "Earth"}), "$.location.planet", id="unknown-nested-field"),
    pytest.param(event(carrier_code="DL01"), "$.carrier_code", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "path"), SINGLE_EVENT_CASES)
async def test_an_invalid_event_is_a_400_naming_the_field_and_writes_nothing(
    api: Api, db: asyncpg.Connection, body: dict, path: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=body)
    assert_problem(r, 400, "invalid-request", path)
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("invalid_item", "path"),
    [
        pytest.param(event(status="bogus"), "$[3].status", id="unknown-status"),
        pytest.param(event(occurred_at="2029-12-01T10:00:00"), "$[3].occurred_at", id="naive-timestamp"),
        pytest.param(event(extra=True), "$[3].extra", id="unknown-field"),
        pytest.param("in_transit", "$[3]", id="not-an-object"),
    ],
)
async def test_one_invalid_event_in_a_list_fails_the_whole_list_and_writes_nothing(
    api: Api, db: asyncpg.Connection, invalid_item, path: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    valid = [event(event_id=f"e{i}", occurred_at=f"2029-12-0{i + 1}T10:00:00Z") for i in range(3)]
    before = await row_counts(db)
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=[*valid, invalid_item, event(event_id="e4")])
    assert_problem(r, 400, "invalid-request", path)
    assert await row_counts(db) == before
    timeline = (await customer.get(f"/v1/shipments/{shipment['id']}/events")).json()
    assert timeline["items"] == []


async def test_an_empty_list_of_events_is_a_400(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=[])
    assert_problem(r, 400, "invalid-request", "$")
    assert await row_counts(db) == before


async def test_more_than_1000_events_for_one_shipment_is_a_400_and_writes_nothing(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    events = [event(event_id=f"e{i}") for i in range(1001)]
    before = await row_counts(db)
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=events)
    body = assert_problem(r, 400, "invalid-request", "$")
    assert "1000" in body["errors"][0]["message"]
    assert await row_counts(db) == before


async def test_exactly_1000_events_for_one_shipment_are_accepted(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    events = [event(event_id=f"e{i}") for i in range(1000)]
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=events)
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 1000
    assert await db.fetchval("select count(*) from events") == 1000


@pytest.mark.parametrize(
    "raw",
    [b'{"status": "in_transit",', b"[{}", b'[{"status": "in_transit"}] x', b""],
    ids=["truncated-object", "truncated-list", "trailing-data", "empty-body"],
)
async def test_malformed_json_on_the_events_endpoint_is_a_400_problem_and_writes_nothing(
    api: Api, db: asyncpg.Connection, raw: bytes
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.post(
        f"/v1/shipments/{shipment['id']}/events", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, "malformed-json")
    assert await row_counts(db) == before


# -- the promise -------------------------------------------------------------------

PROMISE_CASES = [
    pytest.param({"promised_by": "2030-02-01T18:00:00", "reason": "r"}, "$.promised_by", id="promised_by-naive"),
    pytest.param(
        {"promised_by": "2030-02-01T18:00:00Z", "promised_from": "2030-02-01T08:00:00", "reason": "r"},
        "$.promised_from",
        id="promised_from-naive",
    ),
    pytest.param(
        {"promised_by": "2030-02-01T18:00:00Z", "promised_from": "2030-02-02T08:00:00Z", "reason": "r"},
        "$.promised_from",
        id="window-start-after-end",
    ),
    pytest.param({"promised_by": "2030-02-01T18:00:00Z", "reason": ""}, "$.reason", id="reason-empty"),
    pytest.param({"promised_by": "2030-02-01T18:00:00Z", "reason": "r" * 501}, "$.reason", id="reason-too-long"),
    pytest.param({"promised_by": "2030-02-01T18:00:00Z", "reason": 7}, "$.reason", id="reason-a-number"),
    pytest.param({"promised_by": "2030-02-01T18:00:00Z", "reason": "r", "by": "ops"}, "$.by", id="unknown-field"),
    pytest.param({"promised_by": "2030-02-01T18:00:00Z"}, "$.reason", id="reason-missing"),
    pytest.param({"reason": "carrier strike"}, "$.promised_by", id="promised_by-missing"),
]


@pytest.mark.parametrize(("body", "path"), PROMISE_CASES)
async def test_an_invalid_promise_revision_is_a_400_naming_the_field_and_writes_nothing(
    api: Api, db: asyncpg.Connection, body: dict, path: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.put(f"/v1/shipments/{shipment['id']}/promise", json=body)
    assert_problem(r, 400, "invalid-request", path)
    assert await row_counts(db) == before
    unchanged = (await customer.get(f"/v1/shipments/{shipment['id']}")).json()
    assert unchanged["promised_by"] == shipment["promised_by"]
    assert unchanged["version"] == shipment["version"]


async def test_malformed_json_on_the_promise_is_a_400_problem_and_writes_nothing(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.put(
        f"/v1/shipments/{shipment['id']}/promise",
        content=b'{"promised_by": "2030-02-01T18:00:00Z", "reason": }',
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 400, "malformed-json")
    assert await row_counts(db) == before


# -- the carrier batch -------------------------------------------------------------


def carrier_event(shipment: dict, **overrides) -> dict:
    return {"carrier": shipment["carrier"], "tracking_number": shipment["tracking_number"], **event(**overrides)}


@pytest.mark.parametrize(
    ("raw", "slug", "path"),
    [
        pytest.param(b'[{"carrier": "dhl",', "malformed-json", None, id="malformed"),
        pytest.param(b"", "malformed-json", None, id="empty-body"),
        pytest.param(b'{"carrier": "dhl"}', "invalid-request", "$", id="an-object-not-an-array"),
        pytest.param(b"null", "invalid-request", "$", id="null"),
        pytest.param(b'"events"', "invalid-request", "$", id="a-string"),
    ],
)
async def test_a_batch_that_is_not_a_json_array_is_a_400_and_writes_nothing(
    api: Api, db: asyncpg.Connection, raw: bytes, slug: str, path: str | None
):
    carrier = await api.role("carrier", carrier="dhl")
    before = await row_counts(db)
    r = await carrier.post("/v1/events", content=raw, headers={"content-type": "application/json"})
    if path is None:
        assert_problem(r, 400, slug)
    else:
        assert_problem(r, 400, slug, path)
    assert await row_counts(db) == before


async def test_a_batch_of_more_than_1000_items_is_a_400_and_writes_nothing(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    carrier = await api.role("carrier", carrier="dhl")
    # every item valid: the size alone refuses the batch
    items = [carrier_event(shipment, event_id=f"e{i}") for i in range(1001)]
    before = await row_counts(db)
    r = await carrier.post("/v1/events", json=items)
    body = assert_problem(r, 400, "invalid-request", "$")
    assert "1000" in body["errors"][0]["message"]
    assert await row_counts(db) == before


async def test_a_batch_of_exactly_1000_items_is_answered_item_by_item(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    carrier = await api.role("carrier", carrier="dhl")
    items = [carrier_event(shipment, event_id=f"e{i}") for i in range(1000)]
    r = await carrier.post("/v1/events", json=items)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1000
    assert await db.fetchval("select count(*) from events") == 1000


BATCH_ITEM_CASES = [
    pytest.param({"status": "bogus"}, ".status", id="unknown-status"),
    pytest.param({"occurred_at": "2029-12-01T10:00:00"}, ".occurred_at", id="naive-timestamp"),
    pytest.param({"estimated_delivery": "2030-01-01"}, ".estimated_delivery", id="estimate-a-date"),
    pytest.param({"tracking_number": ""}, ".tracking_number", id="tracking_number-empty"),
    pytest.param({"tracking_number": "A" * 65}, ".tracking_number", id="tracking_number-too-long"),
    pytest.param({"tracking_number": "NOSUCHPARCEL1"}, ".tracking_number", id="tracking_number-unknown"),
    pytest.param({"carrier": "ups"}, ".tracking_number", id="no-such-shipment-at-that-carrier"),
    pytest.param({"weight": 3}, ".weight", id="unknown-field"),
    pytest.param({"location": {"country": "Spain"}}, ".location.country", id="bad-nested-field"),
]


@pytest.mark.parametrize(("overrides", "suffix"), BATCH_ITEM_CASES)
async def test_an_invalid_batch_item_is_rejected_with_its_errors_and_the_valid_items_are_accepted(
    api: Api, db: asyncpg.Connection, overrides: dict, suffix: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    carrier = await api.role("carrier")
    items = [
        carrier_event(shipment, event_id="a", occurred_at="2029-12-01T10:00:00Z"),
        carrier_event(shipment, event_id="b", occurred_at="2029-12-02T10:00:00Z"),
        carrier_event(shipment, event_id="c", occurred_at="2029-12-03T10:00:00Z"),
        carrier_event(shipment, event_id="bad", **overrides),
        carrier_event(shipment, event_id="d", status="out_for_delivery", occurred_at="2029-12-04T10:00:00Z"),
    ]
    before = await row_counts(db)
    r = await carrier.post("/v1/events", json=items)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (4, 0, 1)
    assert [item["outcome"] for item in answer["results"]] == ["accepted"] * 3 + ["rejected", "accepted"]
    rejected = answer["results"][3]
    assert rejected["index"] == 3
    assert "shipment_id" not in rejected or rejected["shipment_id"] is None
    assert [e["path"] for e in rejected["errors"]] == [f"$[3]{suffix}"]
    assert all(e["message"] for e in rejected["errors"])
    after = await row_counts(db)
    assert after["events"] == before["events"] + 4
    stored = await db.fetch("select event_id from events order by occurred_at")
    assert [row["event_id"] for row in stored] == ["a", "b", "c", "d"]
    assert (await customer.get(f"/v1/shipments/{shipment['id']}")).json()["status"] == "out_for_delivery"


@pytest.mark.parametrize("item", [42, "in_transit", None, []], ids=["number", "string", "null", "array"])
async def test_a_batch_item_that_is_not_an_object_is_rejected_at_its_index(api: Api, db: asyncpg.Connection, item):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    carrier = await api.role("carrier")
    r = await carrier.post("/v1/events", json=[carrier_event(shipment), item])
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert [e["path"] for e in answer["results"][1]["errors"]] == ["$[1]"]
    assert await db.fetchval("select count(*) from events") == 1


async def test_a_batch_of_only_rejected_items_writes_nothing(api: Api, db: asyncpg.Connection):
    carrier = await api.role("carrier")
    before = await row_counts(db)
    r = await carrier.post(
        "/v1/events",
        json=[{"carrier": "dhl", "tracking_number": "NOSUCH1", **event()}, {"status": "bogus"}],
    )
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (0, 2)
    assert await row_counts(db) == before


# -- who and what: unknown, foreign, no key ----------------------------------------


def write_requests(shipment_id: str) -> list[tuple[str, str, dict | list]]:
    return [
        ("post", f"/v1/shipments/{shipment_id}/events", event()),
        ("post", f"/v1/shipments/{shipment_id}/events", [event(event_id="x"), event(event_id="y")]),
        ("put", f"/v1/shipments/{shipment_id}/promise", {"promised_by": "2030-03-01T00:00:00Z", "reason": "r"}),
    ]


async def test_writes_to_an_unknown_shipment_are_404_and_write_nothing(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    await a_shipment(customer)
    before = await row_counts(db)
    for method, url, body in write_requests("shp_01nosuchshipment0000000000"):
        for client in (customer, api.admin):
            r = await getattr(client, method)(url, json=body)
            assert_problem(r, 404, "not-found")
    assert await row_counts(db) == before


async def test_writes_to_another_accounts_shipment_are_404_and_write_nothing(api: Api, db: asyncpg.Connection):
    _, alice = await api.customer("Alice")
    _, bob = await api.customer("Bob")
    shipment = await a_shipment(alice)
    before = await row_counts(db)
    for method, url, body in write_requests(shipment["id"]):
        r = await getattr(bob, method)(url, json=body)
        # the same answer as for a shipment that does not exist: existence is not leaked
        assert_problem(r, 404, "not-found")
    assert await row_counts(db) == before
    assert (await alice.get(f"/v1/shipments/{shipment['id']}")).json()["version"] == shipment["version"]


async def test_a_batch_cannot_reach_another_accounts_shipment(api: Api, db: asyncpg.Connection):
    _, alice = await api.customer("Alice")
    _, bob = await api.customer("Bob")
    shipment = await a_shipment(alice)
    before = await row_counts(db)
    r = await bob.post("/v1/events", json=[carrier_event(shipment)])
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["outcome"] == "rejected"
    assert [e["path"] for e in result["errors"]] == ["$[0].tracking_number"]
    assert await row_counts(db) == before


async def test_requests_without_a_valid_key_are_401_and_write_nothing(api: Api, db: asyncpg.Connection):
    account_id = await api.new_account()
    key = await api.new_key("customer", account_id)
    customer = api.as_key(key["secret"])
    shipment = await a_shipment(customer)
    assert (await api.admin.delete(f"/v1/keys/{key['id']}")).status_code == 204
    revoked = customer
    missing = api.client
    unknown = api.as_key("ot_this-key-was-never-issued")
    wrong_scheme = _WithHeaders(api.client, {"Authorization": f"Basic {key['secret']}"})
    requests = [
        ("post", "/v1/shipments", shipment_body()),
        ("post", "/v1/events", [carrier_event(shipment)]),
        *write_requests(shipment["id"]),
    ]
    before = await row_counts(db)
    for client in (missing, unknown, revoked, wrong_scheme):
        for method, url, body in requests:
            r = await getattr(client, method)(url, json=body)
            assert_problem(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
    assert await row_counts(db) == before


async def test_a_support_key_cannot_write_events_or_promises(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    support = await api.role("support")
    before = await row_counts(db)
    for method, url, body in [*write_requests(shipment["id"]), ("post", "/v1/events", [carrier_event(shipment)])]:
        r = await getattr(support, method)(url, json=body)
        assert_problem(r, 404, "not-found")
    assert await row_counts(db) == before


# -- query parameters --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        pytest.param("/v1/shipments?limit=abc", "limit", id="limit-not-a-number"),
        pytest.param("/v1/shipments?limit=501", "limit", id="limit-over-500"),
        pytest.param("/v1/shipments?limit=0", "limit", id="limit-zero"),
        pytest.param("/v1/shipments?status=bogus", "status", id="status-unknown"),
        pytest.param("/v1/shipments?late=perhaps", "late", id="late-not-a-boolean"),
        pytest.param("/v1/shipments?at_risk=2", "at_risk", id="at_risk-not-a-boolean"),
        pytest.param("/v1/shipments?updated_after=yesterday", "updated_after", id="updated_after-not-a-timestamp"),
        pytest.param("/v1/shipments?updated_after=2029-12-01T10:00:00", "updated_after", id="updated_after-naive"),
        pytest.param("/v1/changes?after=abc", "after", id="after-not-a-number"),
        pytest.param("/v1/changes?after=-1", "after", id="after-negative"),
        pytest.param("/v1/changes?limit=1001", "limit", id="changes-limit-over-1000"),
    ],
)
async def test_a_bad_query_parameter_is_a_400_problem_naming_the_parameter(api: Api, url: str, parameter: str):
    _, customer = await api.customer()
    r = await customer.get(url)
    assert_problem(r, 400, "invalid-request", f"query.{parameter}")


# -- size ---------------------------------------------------------------------------


def padded_to(body: dict, size: int) -> bytes:
    """The JSON of body, padded with whitespace (still valid JSON) to exactly size bytes."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def test_a_body_of_exactly_1_mib_is_accepted(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    r = await customer.post(
        "/v1/shipments", content=padded_to(shipment_body(), MiB), headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text
    assert await db.fetchval("select count(*) from shipments") == 1


@pytest.mark.parametrize("endpoint", ["create", "events", "promise", "batch"])
async def test_a_body_one_byte_over_1_mib_is_a_413_problem_and_writes_nothing(
    api: Api, db: asyncpg.Connection, endpoint: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    method, url, body = {
        "create": ("post", "/v1/shipments", shipment_body()),
        "events": ("post", f"/v1/shipments/{shipment['id']}/events", event()),
        "promise": (
            "put",
            f"/v1/shipments/{shipment['id']}/promise",
            {"promised_by": "2030-03-01T00:00:00Z", "reason": "r"},
        ),
        "batch": ("post", "/v1/events", [carrier_event(shipment)]),
    }[endpoint]
    before = await row_counts(db)
    r = await getattr(customer, method)(
        url, content=padded_to(body, MiB + 1), headers={"content-type": "application/json"}
    )
    body = assert_problem(r, 413, "body-too-large")
    assert "1 MiB" in body["detail"]
    assert await row_counts(db) == before


async def test_a_body_over_1_mib_without_a_content_length_is_a_413_too(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    raw = padded_to(shipment_body(), MiB + 1)

    async def chunks():
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    before = await row_counts(db)
    r = await customer.post("/v1/shipments", content=chunks(), headers={"content-type": "application/json"})
    assert_problem(r, 413, "body-too-large")
    assert await row_counts(db) == before


# -- input PostgreSQL cannot hold, or Python cannot represent: still a 400, never a 500


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        pytest.param({"reference": "order\u00001"}, "$.reference", id="nul-in-reference"),
        pytest.param({"recipient": {"name": "Ana\u0000"}}, "$.recipient.name", id="nul-in-recipient-name"),
        pytest.param({"metadata": {"note": "a\u0000b"}}, "$.metadata.note", id="nul-in-metadata"),
        pytest.param({"promised_by": "0001-01-01T00:00:00+01:00"}, "$.promised_by", id="instant-before-year-1-in-utc"),
        pytest.param(
            {"promised_by": "9999-12-31T23:30:00-01:00"}, "$.promised_by", id="instant-after-year-9999-in-utc"
        ),
    ],
)
async def test_a_create_the_database_cannot_store_is_a_400_naming_the_field(
    api: Api, db: asyncpg.Connection, overrides: dict, path: str
):
    _, customer = await api.customer()
    before = await row_counts(db)
    r = await customer.post("/v1/shipments", json=shipment_body(**overrides))
    assert_problem(r, 400, "invalid-request", path)
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param(event(description="scan\u0000"), "$.description", id="nul-in-description"),
        pytest.param(event(event_id="e\u00001"), "$.event_id", id="nul-in-event_id"),
        pytest.param(
            event(occurred_at="0001-01-01T00:30:00+01:00"), "$.occurred_at", id="instant-before-year-1-in-utc"
        ),
    ],
)
async def test_an_event_the_database_cannot_store_is_a_400_naming_the_field(
    api: Api, db: asyncpg.Connection, body: dict, path: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=body)
    assert_problem(r, 400, "invalid-request", path)
    assert await row_counts(db) == before


async def test_a_batch_item_the_database_cannot_store_is_rejected_and_the_others_accepted(
    api: Api, db: asyncpg.Connection
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    carrier = await api.role("carrier")
    r = await carrier.post(
        "/v1/events",
        json=[carrier_event(shipment, event_id="ok"), carrier_event(shipment, description="scan\u0000")],
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [item["outcome"] for item in answer["results"]] == ["accepted", "rejected"]
    assert [e["path"] for e in answer["results"][1]["errors"]] == ["$[1].description"]
    assert await db.fetchval("select count(*) from events") == 1


async def test_a_promise_reason_the_database_cannot_store_is_a_400_naming_the_field(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.put(
        f"/v1/shipments/{shipment['id']}/promise",
        json={"promised_by": "2030-03-01T00:00:00Z", "reason": "strike\u0000"},
    )
    assert_problem(r, 400, "invalid-request", "$.reason")
    assert await row_counts(db) == before


async def test_deeply_nested_metadata_is_a_400_not_a_500(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    raw = json.dumps(shipment_body(metadata={"x": 0})).encode()
    raw = raw.replace(b'{"x": 0}', b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    before = await row_counts(db)
    r = await customer.post("/v1/shipments", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    problem(r)
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        pytest.param("/v1/shipments?reference=order%001", "reference", id="nul-in-reference"),
        pytest.param("/v1/shipments?tracking_number=TN%001", "tracking_number", id="nul-in-tracking_number"),
        # the base64 of a NUL byte: decodes, but is no id this API gave out
        pytest.param("/v1/shipments?cursor=AA", "cursor", id="cursor-decoding-to-nul"),
    ],
)
async def test_a_query_parameter_the_database_cannot_compare_is_a_400(api: Api, url: str, parameter: str):
    _, customer = await api.customer()
    r = await customer.get(url)
    assert_problem(r, 400, "invalid-request", f"query.{parameter}")


async def test_a_shipment_id_with_a_nul_byte_is_a_404_not_a_500(api: Api):
    _, customer = await api.customer()
    for url in ("/v1/shipments/shp_%00", "/v1/shipments/shp_%00/events"):
        r = await customer.get(url)
        assert_problem(r, 404, "not-found")


@pytest.mark.parametrize(
    ("url", "query", "path"),
    [
        ("/v1/shipments", "statsu=late", "query.statsu"),
        ("/v1/shipments", "caller=x", "query.caller"),
        ("/v1/shipments", "=", "query."),
        ("/v1/changes", "after=1&after=2", "query.after"),
        ("/v1/late-deliveries", "carrier=dhl&carrier=ups", "query.carrier"),
    ],
    ids=["misspelt", "a-dependency", "no-name", "twice", "twice-text"],
)
async def test_a_query_parameter_the_endpoint_does_not_take_or_takes_once_is_a_400(
    api: Api, url: str, query: str, path: str
):
    _, customer = await api.customer()
    r = await customer.get(f"{url}?{query}")
    assert_problem(r, 400, "invalid-request", path)
