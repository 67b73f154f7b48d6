"""The webhook tables: endpoints (each its own cursor into the change log and
the lease a worker holds on it) and the delivery log."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from api.shell.database import Executor

LOOP = "webhooks"  # the set_aside loop name

ENDPOINT_COLUMNS = """id, account_id, url, kinds, late_only, secret, previous_secret, previous_until, delivered_seq,
    failing_since, disabled_at, created_at, attempts, next_attempt_at, last_error"""


class Endpoint(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    url: str
    kinds: list[str]
    late_only: bool
    secret: str
    previous_secret: str | None
    previous_until: datetime | None
    delivered_seq: int
    failing_since: datetime | None
    disabled_at: datetime | None
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None

    def secrets_in_force(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery: the current one, and the previous during its grace."""
        if self.previous_secret and self.previous_until is not None and self.previous_until > now:
            return [self.secret, self.previous_secret]
        return [self.secret]


def endpoint_from_row(row: asyncpg.Record) -> Endpoint:
    return Endpoint(**{k: row[k] for k in Endpoint.__struct_fields__})


INSERT = f"""
insert into webhook_endpoints (id, account_id, url, kinds, late_only, secret, delivered_seq, created_at)
values ($1, $2, $3, $4, $5, $6, (select coalesce(max(seq), 0) from changes where account_id = $2), $7)
returning {ENDPOINT_COLUMNS}
"""

GET = f"select {ENDPOINT_COLUMNS} from webhook_endpoints where id = $1 and ($2::text is null or account_id = $2)"

LIST = f"""
select {ENDPOINT_COLUMNS} from webhook_endpoints
where ($1::text is null or account_id = $1) and ($2::text is null or id < $2)
order by id desc limit $3
"""

DELETE = "delete from webhook_endpoints where id = $1 and ($2::text is null or account_id = $2) returning id"

ROTATE = f"""
update webhook_endpoints
set previous_secret = secret, previous_until = $3::timestamptz, secret = $4
where id = $1 and ($2::text is null or account_id = $2)
returning {ENDPOINT_COLUMNS}
"""

# Replay: the cursor goes back to `since` (never forward), a disabled endpoint
# is live again, the lease is dropped so that a worker claims it afresh (the
# holder's next cursor move no longer matches and stops it), and the log's rows
# after `since` get new delivery ids: a replay is a new delivery, not a retry.
REPLAY = f"""
with moved as (
    update webhook_endpoints
    set delivered_seq = least(delivered_seq, $3), disabled_at = null, failing_since = null, attempts = 0,
        next_attempt_at = null, last_error = null, lease_until = null, leased_by = null
    where id = $1 and ($2::text is null or account_id = $2)
    returning {ENDPOINT_COLUMNS}
), renamed as (
    update webhook_deliveries d
    set id = 'dlv_' || replace(gen_random_uuid()::text, '-', ''), attempts = 0, delivered_at = null,
        last_status = null, last_error = null, last_latency_ms = null, due_at = now()
    from moved where d.endpoint_id = moved.id and d.seq > $3
)
select * from moved
"""

DELIVERIES = """
select id, seq, attempts, last_status, last_error, last_latency_ms, delivered_at, created_at, due_at
from webhook_deliveries where endpoint_id = $1 and ($2::bigint is null or seq < $2)
order by seq desc limit $3
"""

# -- the worker -------------------------------------------------------------------

# Endpoints with work: live, not leased (or the lease ran out), not waiting for
# a retry, not set aside, with a change past the cursor.
CLAIM = f"""
with ready as (
    select e.id from webhook_endpoints e
    where e.disabled_at is null
      and (e.lease_until is null or e.lease_until < $2)
      and (e.next_attempt_at is null or e.next_attempt_at <= $2)
      and exists (select 1 from changes c where c.account_id = e.account_id and c.seq > e.delivered_seq)
      and not exists (select 1 from set_aside a where a.loop = '{LOOP}' and a.row_id = e.id and a.retry_after > $2)
    order by e.next_attempt_at nulls first, e.id
    limit $3
    for update of e skip locked
)
update webhook_endpoints e set lease_until = $2 + make_interval(secs => $4), leased_by = $1
from ready where e.id = ready.id
returning {", ".join("e." + c.strip() for c in ENDPOINT_COLUMNS.split(","))}
"""

CHANGES_AFTER = "select seq, kind, body from changes where account_id = $1 and seq > $2 order by seq limit $3"

# The delivery log's row for (endpoint, seq): made at the first attempt, so its
# id (the delivery id a receiver drops duplicates by) is the same on every retry.
OPEN_DELIVERY = """
insert into webhook_deliveries (id, endpoint_id, seq, due_at) values ($1, $2, $3, $4)
on conflict (endpoint_id, seq) do update set due_at = excluded.due_at
returning id
"""

ATTEMPTED = """
update webhook_deliveries
set attempts = attempts + 1, last_status = $3, last_error = $4, last_latency_ms = $5, delivered_at = $6, due_at = $7
where endpoint_id = $1 and seq = $2
"""

# The cursor moves only while this worker holds the lease and the cursor is
# where it read it (a replay meanwhile moved it: the worker stops).
ADVANCE = """
update webhook_endpoints
set delivered_seq = $4, attempts = 0, failing_since = null, next_attempt_at = null, last_error = null,
    lease_until = $5 + make_interval(secs => $6)
where id = $1 and leased_by = $2 and delivered_seq = $3 and lease_until > $5
returning id
"""

# A 2xx: the log's row says so and the cursor moves past it, in one statement
# (nothing is logged when the lease was lost meanwhile).
DELIVERED = """
with moved as (
    update webhook_endpoints
    set delivered_seq = $4, attempts = 0, failing_since = null, next_attempt_at = null, last_error = null,
        lease_until = $5 + make_interval(secs => $6)
    where id = $1 and leased_by = $2 and delivered_seq = $3 and lease_until > $5
    returning id
), logged as (
    update webhook_deliveries
    set attempts = attempts + 1, last_status = $7, last_error = null, last_latency_ms = $8, delivered_at = $5, due_at = $5
    where endpoint_id = $1 and seq = $4 and exists (select 1 from moved)
)
select id from moved
"""

FAILED = """
update webhook_endpoints
set attempts = attempts + 1, failing_since = coalesce(failing_since, $3), next_attempt_at = $4, last_error = $5,
    lease_until = null, leased_by = null
where id = $1 and leased_by = $2
returning failing_since, attempts
"""

DISABLE = """
update webhook_endpoints set disabled_at = $2, lease_until = null, leased_by = null
where id = $1 and disabled_at is null returning id
"""

RELEASE = "update webhook_endpoints set lease_until = null, leased_by = null where id = $1 and leased_by = $2"


async def get(conn: Executor, endpoint_id: str, account_id: str | None) -> Endpoint | None:
    row = await conn.fetchrow(GET, endpoint_id, account_id)
    return None if row is None else endpoint_from_row(row)
