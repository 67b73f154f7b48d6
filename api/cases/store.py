"""Cases, their comments, policies and automatic-opening settings: named SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from api.shell.database import Executor
from domain.cases import Case, CaseStatus, CaseType, Policy, Priority

CASE_COLUMNS = """c.id, c.account_id, c.shipment_id, c.type, c.priority, c.subject, c.status,
       c.assignee_key, c.opened_by, c.opened_at, c.first_response_at, c.resolved_at, c.closed_at,
       c.response_due, c.resolution_due, c.response_breached_at, c.resolution_breached_at, c.version"""

SELECT_CASE = f"select {CASE_COLUMNS} from cases c "

INSERT = """
insert into cases (id, account_id, shipment_id, type, priority, subject, status, assignee_key, opened_by,
                   opened_at, response_due, resolution_due, updated_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $10)
"""

# Opens automatic cases, once per shipment and trigger (the partial unique
# index of migrations/0013): a second attempt inserts nothing. A batch in one
# statement; returns the ids it inserted.
INSERT_AUTOMATIC_MANY = """
insert into cases (id, account_id, shipment_id, type, priority, subject, status, assignee_key, opened_by,
                   opened_at, response_due, resolution_due, updated_at)
select id, account_id, shipment_id, type, priority, subject, status, assignee_key, opened_by,
       opened_at, response_due, resolution_due, opened_at
from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
  as u(id, account_id, shipment_id, type, priority, subject, status, assignee_key, opened_by,
       opened_at, response_due, resolution_due)
on conflict (shipment_id, opened_by) where opened_by in ('late', 'exception', 'low_rating') do nothing
returning id
"""

# Saves a case only if it is still at the version it was read at; the
# version moves on by one.
SAVE = """
update cases set status = $3, assignee_key = $4, first_response_at = $5, resolved_at = $6, closed_at = $7,
                 response_breached_at = $8, resolution_breached_at = $9, updated_at = $10, version = version + 1
where id = $1 and version = $2
returning version
"""

POLICY = """
select coalesce(p.respond_within, d.respond_within) as respond_within,
       coalesce(p.resolve_within, d.resolve_within) as resolve_within
from case_policy_defaults d
left join case_policies p on p.account_id = $1 and p.type = d.type and p.priority = d.priority
where d.type = $2 and d.priority = $3
"""

POLICIES = """
select d.type, d.priority,
       coalesce(p.respond_within, d.respond_within) as respond_within,
       coalesce(p.resolve_within, d.resolve_within) as resolve_within,
       p.account_id is not null as overridden
from case_policy_defaults d
left join case_policies p on p.account_id = $1 and p.type = d.type and p.priority = d.priority
order by d.type, d.priority
"""

PUT_POLICY = """
insert into case_policies (account_id, type, priority, respond_within, resolve_within)
values ($1, $2, $3, $4, $5)
on conflict (account_id, type, priority) do update
    set respond_within = excluded.respond_within, resolve_within = excluded.resolve_within
"""

# The setting of each account that asks `trigger` ($2) to open a case, with
# the promise of the case it opens; $3 is the type when the setting names none.
AUTO_OPEN_FOR = """
select a.account_id, d.type, d.priority,
       coalesce(p.respond_within, d.respond_within) as respond_within,
       coalesce(p.resolve_within, d.resolve_within) as resolve_within
from case_auto_open a
join case_policy_defaults d on d.type = coalesce(a.type, $3) and d.priority = a.priority
left join case_policies p on p.account_id = a.account_id and p.type = d.type and p.priority = d.priority
where a.account_id = any($1::text[]) and a.trigger = $2
"""

AUTO_OPEN_ALL = "select trigger, type, priority from case_auto_open where account_id = $1 order by trigger"

PUT_AUTO_OPEN = """
insert into case_auto_open (account_id, trigger, type, priority) values ($1, $2, $3, $4)
on conflict (account_id, trigger) do update set type = excluded.type, priority = excluded.priority
"""

DELETE_AUTO_OPEN = "delete from case_auto_open where account_id = $1 and trigger <> all($2::text[])"


def case_from_row(row: asyncpg.Record) -> Case:
    return Case(
        id=row["id"],
        account_id=row["account_id"],
        shipment_id=row["shipment_id"],
        type=CaseType(row["type"]),
        priority=Priority(row["priority"]),
        subject=row["subject"],
        status=CaseStatus(row["status"]),
        assignee_key=row["assignee_key"],
        opened_by=row["opened_by"],
        opened_at=row["opened_at"],
        first_response_at=row["first_response_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        response_due=row["response_due"],
        resolution_due=row["resolution_due"],
        response_breached_at=row["response_breached_at"],
        resolution_breached_at=row["resolution_breached_at"],
        version=row["version"],
    )


def _insert_args(case: Case) -> tuple[object, ...]:
    return (
        case.id,
        case.account_id,
        case.shipment_id,
        case.type.value,
        case.priority.value,
        case.subject,
        case.status.value,
        case.assignee_key,
        case.opened_by,
        case.opened_at,
        case.response_due,
        case.resolution_due,
    )


async def insert(conn: Executor, case: Case) -> None:
    await conn.execute(INSERT, *_insert_args(case))


async def insert_automatic_many(conn: Executor, cases: Sequence[Case]) -> set[str]:
    """Insert each case unless its shipment already has one from its trigger; returns the ids inserted."""
    if not cases:
        return set()
    columns = [list(column) for column in zip(*(_insert_args(c) for c in cases), strict=True)]
    return {r["id"] for r in await conn.fetch(INSERT_AUTOMATIC_MANY, *columns)}


async def save(conn: Executor, case: Case, now: datetime) -> bool:
    """Save if the case is still at `case.version`; returns whether it was (and moves the version on)."""
    version = await conn.fetchval(
        SAVE,
        case.id,
        case.version,
        case.status.value,
        case.assignee_key,
        case.first_response_at,
        case.resolved_at,
        case.closed_at,
        case.response_breached_at,
        case.resolution_breached_at,
        now,
    )
    if version is None:
        return False
    case.version = version
    return True


# save_many's statement: a batch the caller holds locked, in one statement
SAVE_MANY = """
update cases c set status = u.status, assignee_key = u.assignee_key, first_response_at = u.first_response_at,
                   resolved_at = u.resolved_at, closed_at = u.closed_at,
                   response_breached_at = u.response_breached_at,
                   resolution_breached_at = u.resolution_breached_at, updated_at = $9, version = c.version + 1
from unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[],
            $7::timestamptz[], $8::timestamptz[])
  as u(id, status, assignee_key, first_response_at, resolved_at, closed_at, response_breached_at,
       resolution_breached_at)
where c.id = u.id
"""


async def save_many(conn: Executor, cases: Sequence[Case], now: datetime) -> None:
    """Save a batch the caller holds locked (the sweep): versions are current."""
    if not cases:
        return
    await conn.execute(
        SAVE_MANY,
        [c.id for c in cases],
        [c.status.value for c in cases],
        [c.assignee_key for c in cases],
        [c.first_response_at for c in cases],
        [c.resolved_at for c in cases],
        [c.closed_at for c in cases],
        [c.response_breached_at for c in cases],
        [c.resolution_breached_at for c in cases],
        now,
    )
    for c in cases:
        c.version += 1


async def get(conn: Executor, case_id: str, *, lock: bool = False) -> Case | None:
    row = await conn.fetchrow(SELECT_CASE + "where c.id = $1" + (" for update" if lock else ""), case_id)
    return None if row is None else case_from_row(row)


async def policy(conn: Executor, account_id: str, type: CaseType, priority: Priority) -> Policy:
    row = await conn.fetchrow(POLICY, account_id, type.value, priority.value)
    assert row is not None, "every type and priority has a default (migrations/0013)"
    return Policy(respond_within=row["respond_within"], resolve_within=row["resolve_within"])


SHIPMENT_ACCOUNT = "select account_id from shipments where id = $1"
ACCOUNT = "select id from accounts where id = $1"
ASSIGNABLE = "select role from api_keys where id = $1 and role in ('support', 'admin') and revoked_at is null"

COMMENTS = "select id, author_key, body, created_at from case_comments where case_id = $1 order by id"
INSERT_COMMENT = "insert into case_comments (id, case_id, author_key, body, created_at) values ($1, $2, $3, $4, $5)"

NOTES = "select id, shipment_id, author_key, body, created_at from shipment_notes where shipment_id = $1 order by id"
INSERT_NOTE = """
insert into shipment_notes (id, shipment_id, account_id, author_key, body, created_at) values ($1, $2, $3, $4, $5, $6)
"""

# The queue: the deadline nearest to breach first (cases with none pending
# last), then id; keyset pagination after ($6 next_due, $7 id).
QUEUE = (
    SELECT_CASE
    + """where ($1::text is null or c.status = $1)
  and ($2::text is null or c.type = $2)
  and ($3::text is null or c.assignee_key = $3)
  and ($4::text is null or c.account_id = $4)
  and ($5::boolean is null
       or (c.response_breached_at is not null or c.resolution_breached_at is not null) = $5)
  and ($7::text is null
       or ($6::timestamptz is not null
           and (c.next_due > $6 or (c.next_due = $6 and c.id > $7) or c.next_due is null))
       or ($6::timestamptz is null and c.next_due is null and c.id > $7))
order by c.next_due nulls last, c.id
limit $8"""
)
