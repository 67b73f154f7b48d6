"""The audit log: every access by a key outside the account whose data it
touches (support and admin keys) is written down, in the transaction that reads
or writes that data, so that no answer goes out unrecorded: if the audit row
cannot be written, the request fails.

`Access` is who asked and from where, taken once per request; `record` writes
one row per account touched, so that each account's access log shows its own
part of a search that crossed several."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import msgspec
from litestar.connection import ASGIConnection

from api.shell.auth import Principal
from api.shell.database import DatabaseUnavailable, Executor

MAX_USER_AGENT = 500
MAX_QUERY = 2000  # a live subscription's message, kept to this many characters


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """Who asked (the key, its role and name as they were) and from where."""

    key_id: str
    key_name: str | None
    role: str
    client_addr: str | None
    user_agent: str | None
    action: str  # the method and path, e.g. "GET /v1/shipments/shp_…"


def access(connection: ASGIConnection[Any, Any, Any, Any], caller: Principal) -> Access:
    client = connection.scope.get("client")
    user_agent = next(
        (value.decode("latin-1") for name, value in connection.scope["headers"] if name == b"user-agent"), None
    )
    method = connection.scope.get("method", "WEBSOCKET")
    return Access(
        key_id=caller.key_id,
        key_name=caller.name,
        role=caller.role,
        client_addr=client[0] if client else None,
        user_agent=user_agent[:MAX_USER_AGENT] if user_agent is not None else None,
        action=f"{method} {connection.scope['path']}",
    )


def crosses(caller: Principal, account_id: str | None) -> bool:
    """Whether touching `account_id`'s data with this key is audited: a key
    that is not the account's own (support, admin). A customer key only ever
    reaches its own account; a carrier key's writes are the carrier's job."""
    return caller.role in ("support", "admin") and caller.account_id != account_id


INSERT = """
insert into audit_log (key_id, key_name, role, client_addr, user_agent, action, account_id, shipment_id, shipment_ids, query)
select $1, $2, $3, $4, $5, $6, touched.account_id,
       case when cardinality(touched.ids) = 1 then touched.ids[1] end, touched.ids, $9
from unnest($7::text[], $8::text[]) as touched_flat (account_id, ids_joined)
cross join lateral (
    select touched_flat.account_id, string_to_array(touched_flat.ids_joined, ' ') as ids
) as touched
"""

INSERT_ONE = """
insert into audit_log (key_id, key_name, role, client_addr, user_agent, action, account_id, shipment_id, shipment_ids, query)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""


async def record(
    conn: Executor,
    who: Access,
    *,
    account_id: str | None = None,
    shipment_ids: Sequence[str] = (),
    query: str | None = None,
) -> None:
    """One audit row: an access to one account (or to none in particular, such as
    an admin listing accounts) and the shipments it read or wrote."""
    await _write(
        conn,
        INSERT_ONE,
        who.key_id,
        who.key_name,
        who.role,
        who.client_addr,
        who.user_agent,
        who.action,
        account_id,
        shipment_ids[0] if len(shipment_ids) == 1 else None,
        list(shipment_ids) or None,
        query,
    )


def by_account(answered: Iterable[tuple[str, str | None]]) -> dict[str, list[str]]:
    """(account id, shipment id) pairs, in the order answered, grouped by account;
    an answer about the account itself (a case on no shipment) names the account alone."""
    touched: dict[str, list[str]] = {}
    for account_id, shipment_id in answered:
        ids = touched.setdefault(account_id, [])
        if shipment_id is not None:
            ids.append(shipment_id)
    return touched


def query_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The request's query string as sent, for the audit row's `query`."""
    return connection.scope.get("query_string", b"").decode("latin-1") or None


async def record_by_account(
    conn: Executor, who: Access, touched: Mapping[str, Iterable[str]], *, query: str | None = None
) -> None:
    """One row per account touched, each with its own shipment ids (ids never
    hold a space). A search that answered nothing is still recorded, once, with no account."""
    if not touched:
        await record(conn, who, query=query)
        return
    accounts = list(touched)
    await _write(
        conn,
        INSERT,
        who.key_id,
        who.key_name,
        who.role,
        who.client_addr,
        who.user_agent,
        who.action,
        accounts,
        [" ".join(touched[account]) for account in accounts],
        query,
    )


async def _write(conn: Executor, statement: str, *args: object) -> str:
    """The insert; a refusal (a full disk, a trigger, a constraint) is the
    request's 503, so the caller's transaction rolls back and nothing is answered
    unrecorded, as when the database is away."""
    try:
        return await conn.execute(statement, *args)
    except asyncpg.PostgresError as exc:
        raise DatabaseUnavailable(f"the audit log could not be written: {exc!r}") from exc


INSERT_BY_SHIPMENT = """
insert into audit_log (key_id, key_name, role, client_addr, user_agent, action, account_id, shipment_id, shipment_ids, query)
select $1, $2, $3, $4, $5, $6, s.account_id,
       case when count(*) = 1 then min(s.id) end, array_agg(s.id order by s.id), $8
from shipments s where s.id = any($7::text[])
group by s.account_id
"""


async def record_shipments(conn: Executor, who: Access, shipment_ids: Sequence[str], *, query: str | None) -> None:
    """Rows for shipments named by id, one per account they belong to, found by
    the database in the insert itself; ids that name no shipment are recorded
    once, with no account, when none of them does."""
    status = await _write(conn, INSERT_BY_SHIPMENT, *_who(who), list(shipment_ids), query)
    if status == "INSERT 0 0":
        await record(conn, who, shipment_ids=shipment_ids, query=query)


def _who(who: Access) -> tuple[object, ...]:
    return (who.key_id, who.key_name, who.role, who.client_addr, who.user_agent, who.action)
