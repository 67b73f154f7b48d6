"""The support lookup, GET /v1/support/search: every way a shipment is found across
accounts, the ranking, the bounds on the query, who may search, and the audit row."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.shell.migrate import apply_migrations
from api.shell.settings import MIGRATIONS_DIR
from api.support import store
from tests.integration.conftest import Api, new_tracking_number, problem, shipment_body

SEARCH = "/v1/support/search"


async def account_in(api: Api, name: str, country: str | None) -> tuple[str, httpx.AsyncClient]:
    body = {"name": name, "timezone": "Europe/Madrid"} | ({"country": country} if country else {})
    r = await api.admin.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["country"] == country
    account_id = r.json()["id"]
    key = await api.new_key("customer", account_id)
    return account_id, api.as_key(key["secret"])


async def ship(customer: httpx.AsyncClient, **overrides: object) -> dict:
    body = shipment_body(
        reference=f"ref-{new_tracking_number()}",
        recipient={"name": "Zoe Quist", "email": f"{new_tracking_number()}@example.com"},
    )
    body.update(overrides)
    r = await customer.post("/v1/shipments", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def search(client: httpx.AsyncClient, q: str, **params: object) -> list[dict]:
    r = await client.get(SEARCH, params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def found(items: list[dict]) -> list[tuple[str, str]]:
    return [(item["shipment_id"], item["matched"]) for item in items]


async def test_a_tracking_number_is_found_in_any_account_with_or_without_spaces_in_any_case(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    _, other = await account_in(api, "Other", None)
    mine = await ship(acme, tracking_number="JD0146000062812")
    theirs = await ship(other, tracking_number="JD0146000062812")
    support = await api.role("support")
    items = await search(support, "  jd 0146 0000 6281 2 ")
    assert found(items) == [(theirs["id"], "tracking_number"), (mine["id"], "tracking_number")]
    hit = items[1]
    assert hit == {
        "matched": "tracking_number",
        "shipment_id": mine["id"],
        "account_id": mine["account_id"],
        "account_name": "Acme",
        "carrier": "dhl",
        "tracking_number": "JD0146000062812",
        "reference": mine["reference"],
        "status": "label_created",
        "promised_by": "2030-01-10T17:00:00Z",
        "late": False,
        "at_risk": False,
    }


async def test_a_reference_is_found_exactly(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    shipment = await ship(acme, reference="PO-7731/b")
    await ship(acme, reference="PO-7731")
    support = await api.role("support")
    assert found(await search(support, "PO-7731/b")) == [(shipment["id"], "reference")]


async def test_an_email_is_found_whatever_its_case(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    shipment = await ship(acme, recipient={"name": "Zoe Quist", "email": "Camille.Martin@Example.com"})
    support = await api.role("support")
    assert found(await search(support, "camille.martin@EXAMPLE.COM")) == [(shipment["id"], "email")]


@pytest.mark.parametrize("written", ["+34 600 12 34 56", "0034600123456", "600123456", "600-12-34-56"])
@pytest.mark.parametrize("asked", ["+34 600 12 34 56", "0034600123456", "600123456", "+34600123456"])
async def test_a_spanish_phone_is_found_in_any_form(api: Api, written: str, asked: str):
    _, acme = await account_in(api, "Acme", "ES")
    shipment = await ship(acme, recipient={"name": "Zoe Quist", "phone": written})
    support = await api.role("support")
    assert found(await search(support, asked)) == [(shipment["id"], "phone")]


async def test_a_national_phone_of_an_account_with_no_country_is_found_only_by_name(api: Api):
    _, nowhere = await account_in(api, "Nowhere", None)
    _, acme = await account_in(api, "Acme", "ES")
    international = await ship(nowhere, recipient={"name": "Zoe Quist", "phone": "+34 611 22 33 44"})
    await ship(nowhere, recipient={"name": "Zoe Quist", "phone": "611223355"})
    by_country = await ship(acme, recipient={"name": "Zoe Quist", "phone": "611223355"})
    support = await api.role("support")
    assert found(await search(support, "0034 611 22 33 44")) == [(international["id"], "phone")]
    assert found(await search(support, "611223355")) == [(by_country["id"], "phone")]


async def test_a_name_is_found_with_accents_and_case_ignored(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    begona = await ship(acme, recipient={"name": "Begoña Garciá Ibáñez"})
    await ship(acme, recipient={"name": "Roberto Núñez"})
    support = await api.role("support")
    assert found(await search(support, "begona")) == [(begona["id"], "name")]
    assert found(await search(support, "BEGOÑA GARCIA")) == [(begona["id"], "name")]
    assert found(await search(support, "ibanez")) == [(begona["id"], "name")]


async def test_exact_identifiers_rank_before_names_and_ties_go_newest_first(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    by_name = await ship(acme, recipient={"name": "Ana Lopez"})
    older_reference = await ship(acme, reference="Ana Lopez")
    by_email = await ship(acme, recipient={"name": "Zoe Quist", "email": "ana@lopez.example"})
    newer_reference = await ship(acme, reference="Ana Lopez")
    by_tracking = await ship(acme, tracking_number="ANALOPEZ")
    close_name = await ship(acme, recipient={"name": "Ana Lopes"})
    support = await api.role("support")
    assert found(await search(support, "Ana Lopez")) == [
        (by_tracking["id"], "tracking_number"),
        (newer_reference["id"], "reference"),
        (older_reference["id"], "reference"),
        (by_name["id"], "name"),
        (close_name["id"], "name"),
    ]
    assert found(await search(support, "ana@lopez.example")) == [(by_email["id"], "email")]
    assert len(await search(support, "Ana Lopez", limit=2)) == 2


async def test_a_shipment_found_several_ways_is_listed_once_by_its_best_match(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    shipment = await ship(acme, tracking_number="SAMEAS1", reference="SAMEAS1")
    support = await api.role("support")
    assert found(await search(support, "sameas1")) == [(shipment["id"], "tracking_number")]


async def test_lateness_is_given_with_each_hit(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    shipment = await ship(acme, reference="LATE-1", promised_by="2020-01-01T00:00:00Z")
    support = await api.role("support")
    [hit] = await search(support, "LATE-1")
    assert (hit["shipment_id"], hit["late"], hit["promised_by"]) == (shipment["id"], True, "2020-01-01T00:00:00Z")


@pytest.mark.parametrize("role", ["customer", "carrier"])
async def test_a_customer_or_carrier_key_gets_a_404(api: Api, role: str):
    account_id, acme = await account_in(api, "Acme", "ES")
    await ship(acme, reference="SECRET-1")
    key = await api.role(role, **({"account_id": account_id} if role == "customer" else {}))
    r = await key.get(SEARCH, params={"q": "SECRET-1"})
    assert r.status_code == 404
    assert "SECRET-1" not in r.text
    assert problem(r)["type"].endswith("not-found")


async def test_without_a_key_it_is_a_401(api: Api):
    r = await api.client.get(SEARCH, params={"q": "x"})
    assert r.status_code == 401


async def test_an_admin_key_searches_too(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    shipment = await ship(acme, reference="ADMIN-1")
    assert found(await search(api.admin, "ADMIN-1")) == [(shipment["id"], "reference")]


@pytest.mark.parametrize("q", ["x" * 10_000, "x" * 201, " ", "\t \n", "a" + " " * 200 + "b"])
async def test_a_query_too_long_or_blank_is_a_400_naming_it(api: Api, q: str):
    support = await api.role("support")
    r = await support.get(SEARCH, params={"q": q})
    assert r.status_code == 400
    assert [error["path"] for error in problem(r)["errors"]] == ["query.q"]


@pytest.mark.parametrize("limit", [0, 51, -1])
async def test_a_limit_out_of_range_is_a_400(api: Api, limit: int):
    support = await api.role("support")
    r = await support.get(SEARCH, params={"q": "x", "limit": limit})
    assert r.status_code == 400
    assert [error["path"] for error in problem(r)["errors"]] == ["query.limit"]


@pytest.mark.parametrize(
    "q",
    [
        ("%_\\'\"" * 40),
        ("😀" * 199) + "%",
        "  " + ("x" * 200) + "\t",
        "%",
        "_",
        "' or 1=1 --",
        "\\",
        "ñ̃🚚\u202e",
    ],
)
async def test_any_text_is_safe_and_matches_nothing_it_should_not(api: Api, q: str):
    _, acme = await account_in(api, "Acme", "ES")
    await ship(acme, reference="plain", recipient={"name": "Zoe Quist", "email": "z@example.com"})
    support = await api.role("support")
    assert await search(support, q) == []


async def test_each_search_writes_an_audit_row_with_the_query_and_the_ids_answered(api: Api, db: asyncpg.Connection):
    _, acme = await account_in(api, "Acme", "ES")
    first = await ship(acme, reference="AUDIT-1")
    second = await ship(acme, reference="AUDIT-1")
    support_key = await api.new_key("support")
    support = api.as_key(support_key["secret"])
    await search(support, " AUDIT-1 ")
    await search(support, "nothing-like-it")
    rows = await db.fetch(
        "select key_id, action, query, shipment_ids from audit_log where role = 'support' order by id"
    )
    assert [tuple(row) for row in rows] == [
        (support_key["id"], "GET /v1/support/search", "AUDIT-1", [second["id"], first["id"]]),
        (support_key["id"], "GET /v1/support/search", "nothing-like-it", None),
    ]


async def test_a_search_answering_two_accounts_writes_each_its_own_row(api: Api, db: asyncpg.Connection):
    acme_id, acme = await account_in(api, "Acme", "ES")
    globex_id, globex = await account_in(api, "Globex", "ES")
    at_acme = await ship(acme, reference="SHARED-REF")
    at_globex = await ship(globex, reference="SHARED-REF")
    await search(await api.role("support"), "SHARED-REF")
    rows = await db.fetch("select account_id, shipment_ids, query from audit_log where role = 'support'")
    assert sorted(tuple(row) for row in rows) == sorted(
        [(acme_id, [at_acme["id"]], "SHARED-REF"), (globex_id, [at_globex["id"]], "SHARED-REF")]
    )


async def test_a_refused_search_writes_no_audit_row(api: Api, db: asyncpg.Connection):
    support = await api.role("support")
    await support.get(SEARCH, params={"q": "x" * 201})
    customer_account, _ = await account_in(api, "Acme", "ES")
    customer = await api.role("customer", account_id=customer_account)
    await customer.get(SEARCH, params={"q": "x"})
    assert await db.fetchval("select count(*) from audit_log where role <> 'admin'") == 0


async def test_an_account_with_an_unknown_country_is_refused(api: Api):
    r = await api.admin.post("/v1/accounts", json={"name": "Acme", "country": "XX"})
    assert r.status_code == 400
    assert [error["path"] for error in problem(r)["errors"]] == ["$.country"]


async def test_each_way_to_be_found_runs_alone_and_together(conn: asyncpg.Connection):
    """Every subset of the ways a query is read builds a statement PostgreSQL runs."""
    ways = {
        "tracking_number": "TN1",
        "reference": "r",
        "email": "a@b.c",
        "phones": ["+34600123456"],
        "name": "begona",
    }
    none: dict[str, object] = dict.fromkeys(ways) | {"phones": []}
    for way, value in ways.items():
        assert await store.search(conn, store.Lookup(**(none | {way: value}), limit=5)) == []
    assert await store.search(conn, store.Lookup(**ways, limit=5)) == []
    assert await store.search(conn, store.Lookup(**none, limit=5)) == []


async def test_the_migration_fills_the_phones_written_in_international_form(empty_database_url: str, tmp_path: Path):
    conn = await asyncpg.connect(empty_database_url)
    try:
        for path in sorted(MIGRATIONS_DIR.glob("000[1-8]_*.sql")):
            shutil.copy(path, tmp_path / path.name)
        await apply_migrations(conn, tmp_path)
        await conn.execute("insert into accounts (id, name) values ('acc_1', 'Old')")
        for n, phone in enumerate(["+34 600 12 34 56", "0034 600-12-34-56", "600123456", "+44 (0)20 7946 0018", None]):
            recipient = '{"name": "Old"}' if phone is None else f'{{"phone": "{phone}"}}'
            await conn.execute(
                "insert into shipments (id, account_id, carrier, tracking_number, promised_by, recipient)"
                " values ($1, 'acc_1', 'dhl', $1, now(), $2::jsonb)",
                f"shp_{n}",
                recipient,
            )
        await apply_migrations(conn, MIGRATIONS_DIR)
        rows = await conn.fetch("select id, recipient_phone_e164 from shipments order by id")
    finally:
        await conn.close()
    assert [row["recipient_phone_e164"] for row in rows] == ["+34600123456", "+34600123456", None, None, None]


async def test_a_query_with_a_digit_or_an_at_is_not_looked_for_among_names(api: Api):
    _, acme = await account_in(api, "Acme", "ES")
    await ship(acme, recipient={"name": "Order Martin"})
    await ship(acme, recipient={"name": "Martin Example"})
    support = await api.role("support")
    assert await search(support, "order 1") == []
    assert await search(support, "martin@example") == []
    assert [item["matched"] for item in await search(support, "order martin")] == ["name"]
