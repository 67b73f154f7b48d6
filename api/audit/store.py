"""The audit log read back, newest first, one page at a time."""

from __future__ import annotations

from datetime import datetime

import msgspec

from api.shell.database import Executor


class AuditFilter(msgspec.Struct, kw_only=True, frozen=True):
    """What a page of the audit log is narrowed to; None: not narrowed by it."""

    key_id: str | None = None
    account_id: str | None = None
    shipment_id: str | None = None
    role: str | None = None
    action_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None


class AuditRow(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    key_id: str
    key_name: str | None
    role: str | None
    action: str
    account_id: str | None
    shipment_ids: list[str] | None
    query: str | None
    client_addr: str | None
    user_agent: str | None


PAGE = """
select id, at, key_id, key_name, role, action, account_id, coalesce(shipment_ids, array_remove(array[shipment_id], null)) as shipment_ids,
       query, client_addr, user_agent
from audit_log
where ($1::text is null or key_id = $1)
  and ($2::text is null or account_id = $2)
  and ($3::text is null or shipment_ids @> array[$3] or shipment_id = $3)
  and ($4::text is null or role = $4)
  and ($5::text is null or starts_with(action, $5))
  and ($6::timestamptz is null or at >= $6)
  and ($7::timestamptz is null or at < $7)
  and ($8::bigint is null or id < $8)
order by id desc
limit $9
"""


async def page(conn: Executor, wanted: AuditFilter, limit: int) -> list[AuditRow]:
    rows = await conn.fetch(
        PAGE,
        wanted.key_id,
        wanted.account_id,
        wanted.shipment_id,
        wanted.role,
        wanted.action_prefix,
        wanted.since,
        wanted.until,
        wanted.before_id,
        limit,
    )
    return [AuditRow(**row) for row in rows]
