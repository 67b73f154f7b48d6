"""Cases opened automatically, when the account's setting asks for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from api.cases import service as cases
from api.shell import database
from tests.integration.conftest import Api, shipment_body

NOW = datetime(2030, 1, 5, 12, 0, tzinfo=UTC)


async def _shipment(api: Api) -> tuple[str, str]:
    account_id, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    return account_id, shipment["id"]


async def _open(pool: asyncpg.Pool, account_id: str, shipment_id: str | None, trigger: str = "late") -> str | None:
    async with database.transaction(pool) as conn:
        return await cases.open_automatic(
            conn, account_id=account_id, shipment_id=shipment_id, type="delay", trigger=trigger, now=NOW
        )


async def test_no_case_opens_when_the_account_does_not_ask_for_one(api: Api, pool: asyncpg.Pool):
    account_id, shipment_id = await _shipment(api)

    assert await _open(pool, account_id, shipment_id) is None
    assert await pool.fetchval("select count(*) from cases") == 0


async def test_a_case_opens_once_per_shipment_and_trigger_with_the_settings_type_and_its_promise(
    api: Api, pool: asyncpg.Pool
):
    account_id, shipment_id = await _shipment(api)
    await pool.execute(
        "insert into case_auto_open (account_id, trigger, type, priority) values ($1, 'late', 'delay', 'high')",
        account_id,
    )

    first = await _open(pool, account_id, shipment_id)
    again = await _open(pool, account_id, shipment_id)

    assert first is not None and again is None
    row = await pool.fetchrow("select * from cases")
    assert (row["id"], row["type"], row["priority"], row["opened_by"], row["status"]) == (
        first,
        "delay",
        "high",
        "late",
        "open",
    )
    assert row["response_due"] == NOW + timedelta(hours=4)
    assert row["resolution_due"] == NOW + timedelta(days=1)
    kinds = await pool.fetch("select kind, shipment_id from changes where kind like 'case%'")
    assert [(k["kind"], k["shipment_id"]) for k in kinds] == [("case_opened", shipment_id)]


async def test_an_accounts_own_policy_sets_the_deadlines(api: Api, pool: asyncpg.Pool):
    account_id, shipment_id = await _shipment(api)
    await pool.execute(
        "insert into case_auto_open (account_id, trigger, type, priority) values ($1, 'exception', 'damage', 'urgent')",
        account_id,
    )
    await pool.execute(
        "insert into case_policies values ($1, 'damage', 'urgent', interval '10 minutes', interval '2 hours')",
        account_id,
    )

    assert await _open(pool, account_id, shipment_id, trigger="exception") is not None
    row = await pool.fetchrow("select response_due, resolution_due, next_due from cases")
    assert (row["response_due"], row["resolution_due"], row["next_due"]) == (
        NOW + timedelta(minutes=10),
        NOW + timedelta(hours=2),
        NOW + timedelta(minutes=10),
    )
