"""Cases: open (by hand or automatically), move, assign, comment; each use case
loads, lets the domain decide and saves in one transaction, its changes
appended to the change log last."""

from __future__ import annotations

from datetime import datetime

from api import wire
from api.cases import store
from api.changes import log as change_log
from api.shell.database import Connection
from api.shell.ids import new_id
from domain.cases import Case, CaseType, Priority, Trigger

SUBJECTS: dict[Trigger, str] = {
    Trigger.LATE: "Opened automatically: the delivery promise was broken",
    Trigger.EXCEPTION: "Opened automatically: the carrier reported an exception",
    Trigger.LOW_RATING: "Opened automatically: the recipient gave a low rating",
}


def drain_changes(case: Case) -> list[change_log.NewChange]:
    """Encode what the domain says happened to the case, with the case as it stands."""
    drained = []
    for change in case.changes:
        kind, body = wire.case_change_kind_and_body(case, change)
        drained.append(change_log.NewChange(case.account_id, case.shipment_id, kind, body))
    case.changes.clear()
    return drained


async def open_automatic(
    conn: Connection, *, account_id: str, shipment_id: str | None, type: str, trigger: str, now: datetime
) -> str | None:
    """Open a case in the caller's transaction if the account's setting for
    `trigger` asks for one; returns its id, or None when the setting does not
    ask or this shipment already has a case from this trigger (a retry opens
    nothing twice). The account's setting names the type and priority; `type`
    is the caller's suggestion, used when the setting names none.

    The case's `case_opened` change is appended here, so call this before the
    caller's own append or pass it none after (the change log's lock is then
    taken once, by whichever appends last; both commit together)."""
    setting = await conn.fetchrow(store.AUTO_OPEN, account_id, Trigger(trigger).value)
    if setting is None:
        return None
    case_type = CaseType(setting["type"] or type)
    priority = Priority(setting["priority"])
    policy = await store.policy(conn, account_id, case_type, priority)
    case = Case.open(
        id=new_id("cas"),
        account_id=account_id,
        shipment_id=shipment_id,
        type=case_type,
        priority=priority,
        subject=SUBJECTS[Trigger(trigger)],
        opened_by=trigger,
        policy=policy,
        now=now,
    )
    if not await store.insert_automatic(conn, case):
        return None
    await change_log.append(conn, drain_changes(case))
    return case.id
