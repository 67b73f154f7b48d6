"""Cases: open (by hand or automatically), move, assign, comment; each use case
loads, lets the domain decide and saves in one transaction, its changes
appended to the change log last."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from api import wire
from api.cases import store
from api.changes import log as change_log
from api.shell.database import Connection
from api.shell.ids import new_id
from domain.cases import Case, CaseType, Policy, Priority, Trigger

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
    nothing twice). The setting names the type and priority; `type` is the
    caller's suggestion, taken when the setting names no type.

    The `case_opened` change is appended here (the change log's lock is then
    held from here to the caller's commit)."""
    opened, changes = await _open_automatic(conn, [(account_id, shipment_id)], CaseType(type), Trigger(trigger), now)
    await change_log.append(conn, changes)
    return opened[0] if opened else None


async def open_automatic_many(
    conn: Connection,
    shipments: Sequence[tuple[str, str | None]],
    *,
    type: CaseType,
    trigger: Trigger,
    now: datetime,
) -> list[change_log.NewChange]:
    """`open_automatic` for a batch of (account, shipment), in one look-up of
    the settings; returns the changes for the caller to append with its own."""
    _, changes = await _open_automatic(conn, shipments, type, trigger, now)
    return changes


async def _open_automatic(
    conn: Connection,
    shipments: Sequence[tuple[str, str | None]],
    suggested: CaseType,
    trigger: Trigger,
    now: datetime,
) -> tuple[list[str], list[change_log.NewChange]]:
    if not shipments:
        return [], []
    rows = await conn.fetch(store.AUTO_OPEN_FOR, list({a for a, _ in shipments}), trigger.value, suggested.value)
    settings = {r["account_id"]: r for r in rows}
    candidates: list[Case] = []
    for account_id, shipment_id in shipments:
        setting = settings.get(account_id)
        if setting is None:
            continue
        case = Case.open(
            id=new_id("cas"),
            account_id=account_id,
            shipment_id=shipment_id,
            type=CaseType(setting["type"]),
            priority=Priority(setting["priority"]),
            subject=SUBJECTS[trigger],
            opened_by=trigger.value,
            policy=Policy(respond_within=setting["respond_within"], resolve_within=setting["resolve_within"]),
            now=now,
        )
        candidates.append(case)
    inserted = await store.insert_automatic_many(conn, candidates)
    opened = [case.id for case in candidates if case.id in inserted]
    changes = [change for case in candidates if case.id in inserted for change in drain_changes(case)]
    return opened, changes
