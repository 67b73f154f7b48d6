"""A case's response and resolution deadlines: two kinds of deadline the sweep
(api/deadlines) watches, each a due query over its partial index
(migrations/0013, predicates repeated word for word), the domain's decision
(domain.cases.Case.breach) and a save. A breach is recorded once, with a
`case_breached` change in the case's account feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from api.cases import store
from api.cases.service import drain_changes
from api.changes import log as change_log
from api.deadlines.sweep import DeadlineKind
from api.shell import database
from domain.cases import Case

RESPONSE_LOOP = "case_response_deadline"
RESOLUTION_LOOP = "case_resolution_deadline"

RESPONSE_DUE = (
    store.SELECT_CASE
    + """where c.response_due < $1
           and c.first_response_at is null and c.response_breached_at is null
           and c.status not in ('resolved', 'closed')
           and not exists (select from set_aside a
                           where a.loop = 'case_response_deadline' and a.row_id = c.id and a.retry_after > $1)
         order by c.response_due
         limit $2
         for update of c skip locked"""
)

RESOLUTION_DUE = (
    store.SELECT_CASE
    + """where c.resolution_due < $1
           and c.resolution_breached_at is null and c.status not in ('resolved', 'closed')
           and not exists (select from set_aside a
                           where a.loop = 'case_resolution_deadline' and a.row_id = c.id and a.retry_after > $1)
         order by c.resolution_due
         limit $2
         for update of c skip locked"""
)


def _decide(row: asyncpg.Record, now: datetime) -> Case | None:
    case = store.case_from_row(row)
    return case if case.breach(now) else None


async def _write(conn: database.Connection, breached: Sequence[Case], now: datetime) -> list[change_log.NewChange]:
    await store.save_many(conn, breached, now)
    return [change for case in breached for change in drain_changes(case)]


RESPONSES: DeadlineKind[Case] = DeadlineKind(
    name=RESPONSE_LOOP,
    due=RESPONSE_DUE,
    decide=_decide,
    write=_write,
    item_id=lambda case: case.id,
    log_as="breached response deadline(s)",
)

RESOLUTIONS: DeadlineKind[Case] = DeadlineKind(
    name=RESOLUTION_LOOP,
    due=RESOLUTION_DUE,
    decide=_decide,
    write=_write,
    item_id=lambda case: case.id,
    log_as="breached resolution deadline(s)",
)

KINDS = (RESPONSES, RESOLUTIONS)
