"""The audit log's shell: who and from where, one row per account touched, and
rows that the database refuses to change or delete."""

from __future__ import annotations

import asyncpg
import pytest

from api.shell import audit
from api.shell.auth import Principal

SUPPORT = Principal(key_id="key_s", role="support", account_id=None, carrier=None, name="Ana at the desk")
WHO = audit.Access(
    key_id="key_s",
    key_name="Ana at the desk",
    role="support",
    client_addr="203.0.113.7",
    user_agent="curl/8",
    action="GET /v1/support/search",
)


def test_support_and_admin_keys_cross_accounts_and_a_customer_key_does_not():
    assert audit.crosses(SUPPORT, "acc_1")
    assert audit.crosses(Principal(key_id="k", role="admin", account_id=None, carrier=None), "acc_1")
    assert not audit.crosses(Principal(key_id="k", role="customer", account_id="acc_1", carrier=None), "acc_1")
    assert not audit.crosses(Principal(key_id="k", role="carrier", account_id=None, carrier="dhl"), "acc_1")


async def test_a_search_over_two_accounts_writes_one_row_for_each_with_its_own_ids(db: asyncpg.Connection):
    await audit.record_by_account(db, WHO, {"acc_1": ["shp_a", "shp_b"], "acc_2": ["shp_c"]}, query="begona")
    rows = await db.fetch(
        "select account_id, shipment_id, shipment_ids, query, key_name, role, client_addr, user_agent"
        " from audit_log order by account_id"
    )
    assert [dict(r) for r in rows] == [
        {
            "account_id": "acc_1",
            "shipment_id": None,
            "shipment_ids": ["shp_a", "shp_b"],
            "query": "begona",
            "key_name": "Ana at the desk",
            "role": "support",
            "client_addr": "203.0.113.7",
            "user_agent": "curl/8",
        },
        {
            "account_id": "acc_2",
            "shipment_id": "shp_c",
            "shipment_ids": ["shp_c"],
            "query": "begona",
            "key_name": "Ana at the desk",
            "role": "support",
            "client_addr": "203.0.113.7",
            "user_agent": "curl/8",
        },
    ]


async def test_a_search_that_found_nothing_is_recorded_once_with_no_account(db: asyncpg.Connection):
    await audit.record_by_account(db, WHO, {}, query="nobody")
    rows = await db.fetch("select account_id, shipment_ids, query from audit_log")
    assert [tuple(r) for r in rows] == [(None, None, "nobody")]


@pytest.mark.parametrize(
    "statement", ["update audit_log set key_id = 'x'", "delete from audit_log", "truncate audit_log"]
)
async def test_the_database_refuses_to_change_or_remove_an_audit_row(db: asyncpg.Connection, statement: str):
    await audit.record(db, WHO, account_id="acc_1", shipment_ids=["shp_a"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute(statement)
    assert await db.fetchval("select count(*) from audit_log") == 1
