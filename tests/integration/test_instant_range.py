"""Instants out of 1970-01-01T00:00:00Z..2200-01-01T00:00:00Z: refused over HTTP naming the field,
refused by the database whoever writes, and a database holding some from before still migrates."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import pytest

from api import wire
from api.shell.database import create_pool
from api.shell.migrate import apply_migrations
from api.shell.settings import MIGRATIONS_DIR
from api.shipments import store
from domain.shipment import INSTANT_PATTERN
from tests.integration.conftest import Api, shipment_body
from tests.integration.test_bad_input import a_shipment, assert_problem, event, row_counts

BEFORE = "1969-12-31T23:59:59.999999Z"
# 2200-01-01T00:30:00Z, written with an offset that puts it on the last day's wall clock
AFTER = "2199-12-31T23:30:00-01:00"
FIRST = "1970-01-01T01:00:00+01:00"
LAST = "2199-12-31T23:59:59.999999Z"


@pytest.mark.parametrize("moment", [BEFORE, AFTER, "0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"])
@pytest.mark.parametrize("field", ["promised_by", "promised_from"])
async def test_a_create_with_an_instant_out_of_range_is_a_400_naming_it_and_writes_nothing(
    api: Api, db: asyncpg.Connection, field: str, moment: str
):
    _, customer = await api.customer()
    before = await row_counts(db)
    body = shipment_body(**{field: moment})
    if field == "promised_from":
        body["promised_by"] = LAST
    r = await customer.post("/v1/shipments", json=body)
    assert_problem(r, 400, "invalid-request", f"$.{field}")
    assert await row_counts(db) == before


async def test_the_first_and_the_last_instant_in_range_are_stored_and_read_back_in_utc(api: Api):
    _, customer = await api.customer()
    shipment = await a_shipment(customer, promised_from=FIRST, promised_by=LAST)
    assert (shipment["promised_from"], shipment["promised_by"]) == ("1970-01-01T00:00:00Z", LAST)
    read = (await customer.get(f"/v1/shipments/{shipment['id']}")).json()
    assert (read["promised_from"], read["promised_by"]) == ("1970-01-01T00:00:00Z", LAST)


@pytest.mark.parametrize("field", ["occurred_at", "estimated_delivery"])
@pytest.mark.parametrize("moment", [BEFORE, AFTER])
async def test_an_event_with_an_instant_out_of_range_is_a_400_naming_it_and_writes_nothing(
    api: Api, db: asyncpg.Connection, field: str, moment: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=event(**{field: moment}))
    assert_problem(r, 400, "invalid-request", f"$.{field}")
    r = await customer.post(f"/v1/shipments/{shipment['id']}/events", json=[event(), event(**{field: moment})])
    assert_problem(r, 400, "invalid-request", f"$[1].{field}")
    assert await row_counts(db) == before


async def test_a_batch_item_with_an_instant_out_of_range_is_rejected_naming_it(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    address = {"carrier": shipment["carrier"], "tracking_number": shipment["tracking_number"]}
    r = await customer.post(
        "/v1/events",
        json=[{**address, **event(event_id="ok")}, {**address, **event(estimated_delivery=AFTER)}],
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["outcome"] for x in results] == ["accepted", "rejected"]
    assert [e["path"] for e in results[1]["errors"]] == ["$[1].estimated_delivery"]
    assert await db.fetchval("select count(*) from events") == 1


@pytest.mark.parametrize("field", ["promised_by", "promised_from"])
async def test_a_promise_revised_out_of_range_is_a_400_naming_it_and_writes_nothing(
    api: Api, db: asyncpg.Connection, field: str
):
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    before = await row_counts(db)
    body = {"promised_by": "2030-03-01T00:00:00Z", "reason": "strike", field: BEFORE}
    r = await customer.put(f"/v1/shipments/{shipment['id']}/promise", json=body)
    assert_problem(r, 400, "invalid-request", f"$.{field}")
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/shipments", "updated_after"),
        ("/v1/late-deliveries", "promised_from"),
        ("/v1/late-deliveries", "promised_before"),
    ],
)
@pytest.mark.parametrize("moment", [BEFORE, "2200-01-01T00:00:00Z"])
async def test_a_query_instant_out_of_range_is_a_400_naming_the_parameter(
    api: Api, path: str, parameter: str, moment: str
):
    _, customer = await api.customer()
    r = await customer.get(path, params={parameter: moment})
    assert_problem(r, 400, "invalid-request", f"query.{parameter}")
    r = await customer.get(path, params={parameter: LAST})
    assert r.status_code == 200, r.text


def instant_schemas(node: object) -> list[dict]:
    """Every schema in the document that describes an instant (a date-time string)."""
    if isinstance(node, list):
        return [found for item in node for found in instant_schemas(item)]
    if not isinstance(node, dict):
        return []
    members = node.get("oneOf", []) + node.get("anyOf", [])
    if node.get("format") == "date-time" or any(
        isinstance(m, dict) and m.get("format") == "date-time" for m in members
    ):
        return [node]
    return [found for value in node.values() for found in instant_schemas(value)]


async def test_the_openapi_document_states_the_range_on_every_instant_a_client_sends(api: Api):
    document = (await api.client.get("/docs/openapi.json")).json()
    bodies = [op["requestBody"] for item in document["paths"].values() for op in item.values() if "requestBody" in op]
    referenced = {
        ref.removeprefix("#/components/schemas/")
        for ref in msgspec.json.encode(bodies).decode().split('"$ref":"')[1:]
        for ref in [ref.split('"')[0]]
    }
    sent = [document["components"]["schemas"][name] for name in sorted(referenced)]
    instants = instant_schemas(sent)
    # promised_by and promised_from (create, revise), occurred_at and estimated_delivery (events, batch)
    assert len(instants) >= 8
    for schema in instants:
        assert schema["pattern"] == INSTANT_PATTERN, schema
        assert "1970-01-01T00:00:00Z" in schema["description"]


# -- the database refuses them too, whoever writes ----------------------------------------

OUT_OF_RANGE = ["0001-01-01 00:00:00+00", "1969-12-31 23:59:59.999999+00", "2200-01-01 00:00:00+00", "infinity"]


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("shipments", "promised_by"),
        ("shipments", "status_at"),
        ("shipments", "estimated_delivery"),
        ("shipments", "last_event_at"),
        ("events", "occurred_at"),
        ("events", "estimated_delivery"),
        ("promise_revisions", "previous_promised_by"),
        ("late_deliveries", "promised_by"),
        ("late_deliveries", "delivered_at"),
    ],
)
async def test_the_database_refuses_an_instant_out_of_range_written_around_the_api(
    api: Api, db: asyncpg.Connection, table: str, column: str, moment: str
):
    # late_deliveries.delivered_at = infinity is refused first by its generated delay column
    # (the delay of an infinite delivery is out of range), before the check is reached
    by_delay = (table, column, moment) == ("late_deliveries", "delivered_at", "infinity")
    _, customer = await api.customer()
    shipment = await a_shipment(customer)
    await customer.put(
        f"/v1/shipments/{shipment['id']}/promise", json={"promised_by": "2030-02-01T00:00:00Z", "reason": "r"}
    )
    await customer.post(f"/v1/shipments/{shipment['id']}/events", json=event(status="delivered", event_id="pod"))
    key = "id" if table == "shipments" else "shipment_id"
    if table == "late_deliveries":
        await db.execute(
            "insert into late_deliveries (id, shipment_id, account_id, carrier, promised_by, detected_at, detected_by)"
            " values ('late_1', $1, $2, 'dhl', now(), now(), 'deadline')",
            shipment["id"],
            shipment["account_id"],
        )
    refused = (
        # the stored delay (delivered_at - promised_by) refuses it first: PostgreSQL 17 says the
        # interval is not supported, 15 that infinite timestamps cannot be subtracted
        pytest.raises((asyncpg.FeatureNotSupportedError, asyncpg.DatetimeFieldOverflowError), match="infinit")
        if by_delay
        else pytest.raises(asyncpg.CheckViolationError, match=f"{table}_{column}_in_range")
    )
    with refused:
        await db.execute(
            f"update {table} set {column} = $1::text::timestamptz where {key} = $2", moment, shipment["id"]
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "insert into shipments (id, account_id, carrier, tracking_number, promised_by)"
            " values ('shp_x', $1, 'dhl', 'X1', $2::text::timestamptz)",
            shipment["account_id"],
            moment,
        )


# -- a database that already holds an out-of-range instant -------------------------------


@pytest.fixture
async def legacy_conn(empty_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(empty_database_url)
    yield conn
    await conn.close()


async def test_a_database_holding_instants_out_of_range_is_put_right_and_then_refuses_new_ones(
    legacy_conn: asyncpg.Connection, empty_database_url: str, tmp_path: Path
):
    for path in sorted(MIGRATIONS_DIR.glob("000[1-5]_*.sql")):
        shutil.copy(path, tmp_path / path.name)
    await apply_migrations(legacy_conn, tmp_path)
    await legacy_conn.execute("insert into accounts (id, name) values ('acc_1', 'Old')")
    await legacy_conn.execute(
        "insert into shipments (id, account_id, carrier, tracking_number, promised_by, promised_from, estimated_delivery)"
        " values ('shp_old', 'acc_1', 'dhl', 'OLD1', '0001-01-01 00:00:00+00', '-infinity', 'infinity')"
    )

    await apply_migrations(legacy_conn, MIGRATIONS_DIR)

    # every constraint holds for every row: the old instants were moved to the range's edges...
    assert all(
        row["convalidated"]
        for row in await legacy_conn.fetch("select convalidated from pg_constraint where conname like '%in_range'")
    )
    # ...and what they were is kept for an operator
    put_right = {
        row["column_name"]: (row["original"], row["put_right_to"])
        for row in await legacy_conn.fetch("select * from instants_put_right where row_key = 'shp_old'")
    }
    assert put_right["promised_by"][1] == datetime(1970, 1, 1, tzinfo=UTC)
    assert put_right["promised_by"][0].startswith("0001-01-01")
    assert put_right["promised_from"] == ("-infinity", datetime(1970, 1, 1, tzinfo=UTC))
    assert put_right["estimated_delivery"] == ("infinity", datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    with pytest.raises(asyncpg.CheckViolationError):
        await legacy_conn.execute(
            "insert into shipments (id, account_id, carrier, tracking_number, promised_by)"
            " values ('shp_new', 'acc_1', 'dhl', 'NEW1', '0001-01-01 00:00:00+00')"
        )
    # the row put right reads back with its offset and can be updated again (no 500 on its next event)
    pool = await create_pool(empty_database_url, min_size=1, max_size=1)
    try:
        shipment = await store.get(pool, "shp_old", None)
        await pool.execute("update shipments set reference = 'r' where id = 'shp_old'")
    finally:
        await pool.close()
    assert shipment is not None
    assert shipment.promised_by == datetime(1970, 1, 1, tzinfo=UTC)
    out = msgspec.json.decode(msgspec.json.encode(wire.shipment_out(shipment, datetime.now(UTC))))
    assert out["promised_by"] == "1970-01-01T00:00:00Z"


async def test_a_clean_database_gets_every_instant_constraint_validated(db: asyncpg.Connection):
    rows = await db.fetch("select conname, convalidated from pg_constraint where conname like '%in_range'")
    assert len(rows) == 19
    assert all(row["convalidated"] for row in rows)
