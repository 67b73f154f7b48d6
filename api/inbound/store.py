"""SQL for integrations and inbound payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from api.shell.database import Executor

INSERT_INTEGRATION = """
insert into integrations (id, account_id, source, name, secret, created_at)
values ($1, $2, $3, $4, $5, $6)
"""
INTEGRATION_COLUMNS = "id, account_id, source, name, created_at"
GET_INTEGRATION = "select id, account_id, source, name, secret, created_at from integrations where id = $1"
LIST_INTEGRATIONS = f"""
select {INTEGRATION_COLUMNS} from integrations
where ($1::text is null or account_id = $1) and ($2::text is null or id < $2)
order by id desc limit $3
"""

INSERT_PAYLOAD = """
insert into inbound_payloads (id, account_id, source, integration_id, key_id, received_at, content_type, body)
values ($1, $2, $3, $4, $5, $6, $7, $8)
"""
UPDATE_PAYLOAD = """
update inbound_payloads set events = $2, matched = $3, unmatched = $4, errors = $5::jsonb where id = $1
"""
PAYLOAD_COLUMNS = (
    "id, account_id, source, integration_id, received_at, content_type, events, matched, unmatched, errors"
)
GET_PAYLOAD = f"select {PAYLOAD_COLUMNS}, body from inbound_payloads where id = $1"
LIST_PAYLOADS = f"""
select {PAYLOAD_COLUMNS} from inbound_payloads
where ($1::text is null or account_id = $1) and ($2::text is null or id < $2)
  and ($3::text is null or source = $3)
order by id desc limit $4
"""
ACCOUNT_ZONE = "select timezone from accounts where id = $1"

# the retention loop: the oldest first, a batch at a time
EXPIRED = "select id from inbound_payloads where received_at < $1 order by received_at limit $2"
DELETE_MANY = "delete from inbound_payloads where id = any($1::text[])"
DELETE_ONE = "delete from inbound_payloads where id = $1"


def errors_json(errors: list[Any]) -> str:
    return msgspec.json.encode(errors).decode()


async def account_zone(conn: Executor, account_id: str | None) -> str:
    if account_id is None:
        return "UTC"
    zone = await conn.fetchval(ACCOUNT_ZONE, account_id)
    return zone if isinstance(zone, str) and zone else "UTC"


async def insert_payload(
    conn: Executor,
    payload_id: str,
    account_id: str | None,
    source: str,
    integration_id: str | None,
    key_id: str | None,
    received_at: datetime,
    content_type: str | None,
    body: bytes,
) -> None:
    await conn.execute(
        INSERT_PAYLOAD, payload_id, account_id, source, integration_id, key_id, received_at, content_type, body
    )
