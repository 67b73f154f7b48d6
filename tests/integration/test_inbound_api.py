"""POST /v1/inbound/{source} and around it, on real Postgres: keys and signatures,
unmatched numbers, the body limit, XML entity tricks, replays and concurrent
repeats that add nothing, the unmapped-code metric, listing, and retention."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from api.inbound import retention
from api.shell.clock import utcnow
from api.shell.database import create_pool
from tests.integration.conftest import Api, new_tracking_number, problem, shipment_body

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inbound"
AFTERSHIP_NUMBER = b"1Z999AA10123456784"
EASYPOST_NUMBER = b"9400110898825022579493"


def fixture(source: str, name: str, number: bytes, new: str) -> bytes:
    return (FIXTURES / source / name).read_bytes().replace(number, new.encode())


async def a_shipment(client, number: str, carrier: str = "ups") -> dict:
    r = await client.post("/v1/shipments", json=shipment_body(carrier=carrier, tracking_number=number))
    assert r.status_code == 201, r.text
    return r.json()


async def payload_count(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("select count(*) from inbound_payloads"))


def aftership_sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def test_a_customer_key_records_mapped_events_with_their_raw_code_and_the_payload(
    api: Api, db: asyncpg.Connection
) -> None:
    _, customer = await api.customer()
    number = new_tracking_number()
    shipment = await a_shipment(customer, number)
    body = fixture("aftership", "delivered.json", AFTERSHIP_NUMBER, number)
    r = await customer.post("/v1/inbound/aftership", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["events"], answer["accepted"], answer["unmatched"]) == (3, 3, 0)
    assert [i["status"] for i in answer["items"]] == ["label_created", "in_transit", "delivered"]
    rows = await db.fetch(
        "select carrier_code, carrier_status, time_rule, inbound_payload_id from events where shipment_id = $1"
        " order by occurred_at",
        shipment["id"],
    )
    assert [r["carrier_code"] for r in rows] == ["InfoReceived_001", "InTransit_007", "Delivered_003"]
    assert [r["time_rule"] for r in rows] == ["offset", "location", "offset"]
    assert {r["inbound_payload_id"] for r in rows} == {answer["id"]}
    stored = await db.fetchrow("select body, events, matched from inbound_payloads where id = $1", answer["id"])
    assert bytes(stored["body"]) == body and (stored["events"], stored["matched"]) == (3, 3)
    r = await customer.get(f"/v1/shipments/{shipment['id']}")
    assert r.json()["status"] == "delivered"
    # the timeline says what the carrier said, as it said it
    timeline = (await customer.get(f"/v1/shipments/{shipment['id']}/events")).json()["items"]
    assert [e["carrier_code"] for e in timeline] == ["InfoReceived_001", "InTransit_007", "Delivered_003"]
    assert all(e["carrier_status"] for e in timeline)


async def test_a_number_no_shipment_has_is_kept_and_answered_unmatched(api: Api, db: asyncpg.Connection) -> None:
    _, customer = await api.customer()
    body = fixture("easypost", "in_transit.json", EASYPOST_NUMBER, new_tracking_number())
    r = await customer.post("/v1/inbound/easypost", content=body)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["accepted"], answer["unmatched"]) == (0, 2)
    assert {i["outcome"] for i in answer["items"]} == {"unmatched"}
    assert await db.fetchval("select unmatched from inbound_payloads where id = $1", answer["id"]) == 2


async def test_a_signed_webhook_is_taken_and_a_bad_signature_is_401_and_not_kept(
    api: Api, db: asyncpg.Connection
) -> None:
    account_id, customer = await api.customer()
    number = new_tracking_number()
    await a_shipment(customer, number)
    r = await customer.post("/v1/integrations", json={"source": "aftership", "name": "store"})
    assert r.status_code == 201, r.text
    integration = r.json()
    secret = integration["secret"]
    assert integration["webhook_path"] == f"/v1/inbound/aftership?integration={integration['id']}"
    listed = (await customer.get("/v1/integrations")).json()["items"]
    assert [i["id"] for i in listed] == [integration["id"]] and "secret" not in listed[0]
    body = fixture("aftership", "in_transit.json", AFTERSHIP_NUMBER, number)
    url = f"/v1/inbound/aftership?integration={integration['id']}"
    before = await payload_count(db)
    other = fixture("aftership", "delivered.json", AFTERSHIP_NUMBER, number)
    for header in (aftership_sign(secret, other), aftership_sign("wrong", body), ""):
        r = await api.client.post(url, content=body, headers={"aftership-hmac-sha256": header})
        assert r.status_code == 401, r.text
        assert problem(r)["status"] == 401
    r = await api.client.post(url, content=body)  # no header at all
    assert r.status_code == 401
    assert await payload_count(db) == before
    r = await api.client.post(url, content=body, headers={"aftership-hmac-sha256": aftership_sign(secret, body)})
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 2
    assert await db.fetchval("select account_id from inbound_payloads where id = $1", r.json()["id"]) == account_id
    # the signature of another source's integration does not open this one
    r = await api.client.post(
        f"/v1/inbound/easypost?integration={integration['id']}", content=body, headers={"x-hmac-signature": "x"}
    )
    assert r.status_code == 401


async def test_an_easypost_signature_is_the_hex_hmac_with_its_prefix(api: Api) -> None:
    _, customer = await api.customer()
    integration = (await customer.post("/v1/integrations", json={"source": "easypost"})).json()
    body = fixture("easypost", "delivered.json", EASYPOST_NUMBER, new_tracking_number())
    good = "hmac-sha256-hex=" + hmac.new(integration["secret"].encode(), body, hashlib.sha256).hexdigest()
    url = f"/v1/inbound/easypost?integration={integration['id']}"
    tampered = good[:-1] + ("1" if good[-1] == "0" else "0")
    bare = good.removeprefix("hmac-sha256-hex=")  # the hex alone, without EasyPost's prefix
    for header in (tampered, bare):
        r = await api.client.post(url, content=body, headers={"x-hmac-signature": header})
        assert r.status_code == 401, r.text
    r = await api.client.post(url, content=body, headers={"x-hmac-signature": good})
    assert r.status_code == 201, r.text


async def test_replay_adds_nothing_already_there(api: Api, db: asyncpg.Connection) -> None:
    _, customer = await api.customer()
    number = new_tracking_number()
    shipment = await a_shipment(customer, number)
    body = fixture("aftership", "out_for_delivery.json", AFTERSHIP_NUMBER, number)
    first = (await customer.post("/v1/inbound/aftership", content=body)).json()
    count = await db.fetchval("select count(*) from events where shipment_id = $1", shipment["id"])
    r = await customer.post(f"/v1/inbound/{first['id']}/replay")
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["duplicate"]) == (0, 3)
    assert await db.fetchval("select count(*) from events where shipment_id = $1", shipment["id"]) == count == 3
    # another account cannot replay it, or see it
    _, stranger = await api.customer("Other")
    assert (await stranger.post(f"/v1/inbound/{first['id']}/replay")).status_code == 404
    assert (await stranger.get("/v1/inbound")).json()["items"] == []


async def test_a_payload_for_a_shipment_created_later_is_taken_on_replay(api: Api, db: asyncpg.Connection) -> None:
    _, customer = await api.customer()
    number = new_tracking_number()
    body = fixture("easypost", "out_for_delivery.json", EASYPOST_NUMBER, number)
    first = (await customer.post("/v1/inbound/easypost", content=body)).json()
    assert first["unmatched"] == 3
    shipment = await a_shipment(customer, number, carrier="usps")
    r = await customer.post(f"/v1/inbound/{first['id']}/replay")
    assert r.json()["accepted"] == 3
    assert await db.fetchval("select count(*) from events where shipment_id = $1", shipment["id"]) == 3


async def test_the_same_payload_twice_at_once_records_each_event_once(api: Api, db: asyncpg.Connection) -> None:
    _, customer = await api.customer()
    number = new_tracking_number()
    shipment = await a_shipment(customer, number)
    body = fixture("aftership", "attempt_then_pickup_point.json", AFTERSHIP_NUMBER, number)
    answers = await asyncio.gather(*(customer.post("/v1/inbound/aftership", content=body) for _ in range(2)))
    assert [a.status_code for a in answers] == [201, 201]
    assert sorted(a.json()["accepted"] for a in answers) == [0, 4]
    assert await db.fetchval("select count(*) from events where shipment_id = $1", shipment["id"]) == 4


async def test_a_5_mb_body_is_a_413_that_states_the_limit_and_nothing_is_kept(api: Api, db: asyncpg.Connection) -> None:
    _, customer = await api.customer()
    before = await payload_count(db)
    r = await customer.post("/v1/inbound/dhl", content=b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert r.status_code == 413
    assert "4194304 bytes" in problem(r)["detail"]
    assert await payload_count(db) == before


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b"<tracking-detail><unclosed>",
    ],
    ids=["billion-laughs", "external-entity", "malformed"],
)
async def test_xml_entity_tricks_and_malformed_xml_are_a_400_and_nothing_is_kept(
    api: Api, db: asyncpg.Connection, body: bytes
) -> None:
    _, customer = await api.customer()
    before = await payload_count(db)
    for source in ("dhl_express", "canada_post"):
        r = await customer.post(f"/v1/inbound/{source}", content=body, headers={"content-type": "application/xml"})
        assert r.status_code == 400, r.text
        assert problem(r)["errors"][0]["path"] == "body"
    assert await payload_count(db) == before


async def test_an_unknown_source_is_a_400_naming_it_and_a_support_key_may_not_post(api: Api) -> None:
    _, customer = await api.customer()
    r = await customer.post("/v1/inbound/pigeon", content=b"{}")
    assert r.status_code == 400, r.text
    assert problem(r)["errors"][0]["path"] == "path.source"
    support = await api.role("support")
    assert (await support.post("/v1/inbound/ups", content=b"{}")).status_code == 404
    assert (await api.client.post("/v1/inbound/ups", content=b"{}")).status_code == 401


async def test_unknown_codes_are_counted_in_metrics_by_source_and_code(api: Api) -> None:
    _, customer = await api.customer()
    body = fixture("aftership", "unknown_subtag_and_tag.json", AFTERSHIP_NUMBER, new_tracking_number())
    r = await customer.post("/v1/inbound/aftership", content=body)
    assert [i["unmapped"] for i in r.json()["items"]] == [False, False, True, True]
    metrics = (await api.client.get("/metrics")).text
    assert 'ontime_inbound_unmapped_codes_total{code="Exception_099",source="aftership"}' in metrics


async def test_payloads_are_listed_newest_first_with_a_cursor(api: Api) -> None:
    _, customer = await api.customer()
    ids = []
    for _ in range(3):
        body = fixture("easypost", "in_transit.json", EASYPOST_NUMBER, new_tracking_number())
        ids.append((await customer.post("/v1/inbound/easypost", content=body)).json()["id"])
    page = (await customer.get("/v1/inbound", params={"limit": 2, "include": "body"})).json()
    assert [p["id"] for p in page["items"]] == ids[::-1][:2]
    assert page["items"][0]["body"].startswith("{")
    rest = (await customer.get("/v1/inbound", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert [p["id"] for p in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert "body" not in rest["items"][0]


async def test_integrations_are_per_account(api: Api) -> None:
    account_id, customer = await api.customer()
    r = await customer.post("/v1/integrations", json={"source": "ups"})
    assert r.status_code == 400 and problem(r)["errors"][0]["path"] == "$.source"
    r = await api.admin.post("/v1/integrations", json={"source": "easypost"})
    assert r.status_code == 400 and problem(r)["errors"][0]["path"] == "$.account_id"
    r = await api.admin.post("/v1/integrations", json={"source": "easypost", "account_id": account_id})
    assert r.status_code == 201
    _, stranger = await api.customer("Other")
    assert (await stranger.get("/v1/integrations")).json()["items"] == []
    r = await stranger.post("/v1/integrations", json={"source": "easypost", "account_id": account_id})
    assert r.status_code == 404


async def test_retention_deletes_old_payloads_and_sets_a_bad_row_aside(api: Api, db: asyncpg.Connection) -> None:
    old = utcnow() - timedelta(days=40)
    for payload_id in ("inb_old_good", "inb_old_bad"):
        await db.execute(
            "insert into inbound_payloads (id, source, received_at, body) values ($1, 'ups', $2, '\\x7b7d')",
            payload_id,
            old,
        )
    await db.execute(
        "create or replace function refuse_bad_payload() returns trigger language plpgsql as $$"
        " begin if old.id = 'inb_old_bad' then raise exception 'bad row'; end if; return old; end $$"
    )
    await db.execute(
        "create trigger refuse_bad_payload before delete on inbound_payloads"
        " for each row execute function refuse_bad_payload()"
    )
    try:
        app_pool = await create_pool(TEST_DSN[0], min_size=1, max_size=2)
        try:
            await retention.sweep(app_pool, 30)
        finally:
            await app_pool.close()
        left = {r["id"] for r in await db.fetch("select id from inbound_payloads where id like 'inb_old_%'")}
        assert left == {"inb_old_bad"}
        assert (
            await db.fetchval(
                "select count(*) from set_aside where loop = $1 and row_id = 'inb_old_bad'", retention.LOOP
            )
            == 1
        )
    finally:
        await db.execute("drop trigger refuse_bad_payload on inbound_payloads")
        await db.execute("delete from inbound_payloads where id like 'inb_old_%'")
        await db.execute("delete from set_aside where loop = $1", retention.LOOP)


TEST_DSN: list[str] = []


@pytest.fixture(autouse=True)
def _remember_dsn(database_url: str) -> None:
    TEST_DSN[:] = [database_url]
