"""The support desk's use cases on cases and notes: each loads, lets the domain
decide and saves in one transaction, with the audit row of an access across
accounts and the changes for the account's feed (notes never go to a feed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

from api import wire
from api.cases import service, store
from api.changes import log as change_log
from api.shell import audit, database
from api.shell.auth import Principal
from api.shell.clock import utcnow
from api.shell.errors import FieldError, Problem, named_not_found, not_found
from api.shell.ids import new_id
from api.shipments import store as shipments
from domain.cases import Case, CaseStatus, CaseType, Priority, TransitionRefused, Trigger
from domain.errors import InvalidField

Text = Annotated[str, Meta(min_length=1, max_length=10_000, pattern=r"^[^\x00]*$")]
Subject = Annotated[str, Meta(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
# a promise of one minute to one year, in whole seconds (a number, so that 600.0 reads as 600)
Seconds = Annotated[float, Meta(ge=60, le=31_536_000, multiple_of=1)]


class OpenCase(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A case on a shipment (its account is the shipment's) or on an account."""

    type: CaseType
    subject: Subject
    priority: Priority = Priority.NORMAL
    shipment_id: Id | None = None
    account_id: Id | None = None
    assignee_key: Id | None = None

    def __post_init__(self) -> None:
        if (self.shipment_id is None) == (self.account_id is None):
            raise InvalidField("shipment_id", "give a shipment_id or an account_id, not both")


class UpdateCase(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What to change; a field left out stays as it is. `assignee_key` null unassigns."""

    status: CaseStatus | msgspec.UnsetType = msgspec.UNSET
    assignee_key: Id | msgspec.UnsetType | None = msgspec.UNSET


class AddText(msgspec.Struct, forbid_unknown_fields=True):
    body: Text


class PolicyItem(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: CaseType
    priority: Priority
    respond_within_seconds: Seconds
    resolve_within_seconds: Seconds


class PutPolicies(msgspec.Struct, forbid_unknown_fields=True):
    """The account's own promises: each item replaces that type and priority's (the others stay)."""

    items: Annotated[list[PolicyItem], Meta(max_length=24)]


class Automatic(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # null: the type the trigger suggests (delay for late; damage, lost, address_issue or delay for an
    # exception by its reason; complaint for a low rating)
    type: CaseType | None = None
    priority: Priority = Priority.NORMAL


class PutAutomatic(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which triggers open a case on their own: replaces the account's settings (a trigger left out or null opens none)."""

    late: Automatic | None = None
    exception: Automatic | None = None
    low_rating: Automatic | None = None

    def items(self) -> list[tuple[Trigger, Automatic]]:
        return [(trigger, setting) for trigger in Trigger if (setting := getattr(self, trigger.value)) is not None]


class CommentOut(msgspec.Struct, kw_only=True):
    id: str
    author_key: str
    body: str
    created_at: datetime


class NoteOut(CommentOut, kw_only=True):
    shipment_id: str


class CaseDetail(msgspec.Struct, kw_only=True):
    case: wire.CaseOut
    comments: list[CommentOut]
    # the shipment's timeline, oldest first (empty for a case on an account)
    timeline: list[wire.EventOut]


class CasePage(msgspec.Struct):
    items: list[wire.CaseOut]
    next_cursor: str | None


class PolicyOut(msgspec.Struct, kw_only=True):
    type: str
    priority: str
    respond_within_seconds: int
    resolve_within_seconds: int
    # the account's own, not the default
    overridden: bool


class Policies(msgspec.Struct, kw_only=True):
    items: list[PolicyOut]
    automatic: PutAutomatic


class Notes(msgspec.Struct):
    items: list[NoteOut]


def _conflict(case: Case) -> Problem:
    return Problem(
        409,
        "case-changed",
        "The case changed meanwhile",
        f"the case changed meanwhile: it is at version {case.version}; read it again and retry",
    )


async def _audit(conn: database.Connection, who: audit.Access, caller: Principal, case: Case) -> None:
    if audit.crosses(caller, case.account_id):
        shipment_ids = [case.shipment_id] if case.shipment_id else []
        await audit.record(conn, who, account_id=case.account_id, shipment_ids=shipment_ids)


async def _valid_assignee(conn: database.Connection, key_id: str | None, path: str) -> None:
    if key_id is None:
        return
    role = await conn.fetchval(store.ASSIGNABLE, key_id)
    if role is None:
        raise named_not_found(path, "support or admin key (live)")


async def open_case(pool: database.Pool, caller: Principal, who: audit.Access, command: OpenCase) -> wire.CaseOut:
    now = utcnow()
    async with database.transaction(pool) as conn:
        if command.shipment_id is not None:
            account_id = await conn.fetchval(store.SHIPMENT_ACCOUNT, command.shipment_id)
            if account_id is None:
                raise named_not_found("$.shipment_id", "shipment")
        else:
            account_id = await conn.fetchval(store.ACCOUNT, command.account_id)
            if account_id is None:
                raise named_not_found("$.account_id", "account")
        await _valid_assignee(conn, command.assignee_key, "$.assignee_key")
        policy = await store.policy(conn, account_id, command.type, command.priority)
        case = Case.open(
            id=new_id("cas"),
            account_id=account_id,
            shipment_id=command.shipment_id,
            type=command.type,
            priority=command.priority,
            subject=command.subject,
            opened_by=caller.key_id,
            policy=policy,
            now=now,
        )
        case.assign(command.assignee_key)
        await store.insert(conn, case)
        await _audit(conn, who, caller, case)
        await change_log.append(conn, service.drain_changes(case))
    return wire.case_out(case)


async def read_case(pool: database.Pool, caller: Principal, who: audit.Access, case_id: str) -> CaseDetail:
    async with database.transaction(pool) as conn:
        case = await store.get(conn, case_id)
        if case is None:
            raise not_found("case")
        comments = await conn.fetch(store.COMMENTS, case_id)
        timeline = [] if case.shipment_id is None else await shipments.timeline(conn, case.shipment_id)
        await _audit(conn, who, caller, case)
    return CaseDetail(
        case=wire.case_out(case),
        comments=[CommentOut(**dict(r)) for r in comments],
        timeline=[wire.event_out(event, received_at) for event, received_at in timeline],
    )


async def update_case(
    pool: database.Pool,
    caller: Principal,
    who: audit.Access,
    case_id: str,
    command: UpdateCase,
    if_match: int | None,
) -> wire.CaseOut:
    """Optimistic: the save succeeds only if the case is still at the version
    read (or the one the caller names in If-Match), so two agents at once never lose an update."""
    now = utcnow()
    async with database.transaction(pool) as conn:
        case = await store.get(conn, case_id)
        if case is None:
            raise not_found("case")
        if if_match is not None and if_match != case.version:
            raise _conflict(case)
        if command.assignee_key is not msgspec.UNSET:
            await _valid_assignee(conn, command.assignee_key, "$.assignee_key")
            case.assign(command.assignee_key)
        if command.status is not msgspec.UNSET and command.status != case.status:
            try:
                case.move_to(command.status, now)
            except TransitionRefused as exc:
                raise Problem(
                    409,
                    "case-move-refused",
                    "The case cannot make this move",
                    str(exc),
                    [FieldError("$.status", str(exc))],
                ) from None
        if case.changes:
            if not await store.save(conn, case, now):
                current = await store.get(conn, case_id)
                raise _conflict(current or case)
            await _audit(conn, who, caller, case)
            await change_log.append(conn, service.drain_changes(case))
        else:
            await _audit(conn, who, caller, case)
    return wire.case_out(case)


async def comment(
    pool: database.Pool, caller: Principal, who: audit.Access, case_id: str, command: AddText
) -> CommentOut:
    """A comment by a support or admin key; the first is the case's first response."""
    now = utcnow()
    async with database.transaction(pool) as conn:
        case = await store.get(conn, case_id, lock=True)
        if case is None:
            raise not_found("case")
        first = case.first_response_at is None
        case.comment(now)
        if first:
            await store.save(conn, case, now)  # locked: the version is current
        out = CommentOut(id=new_id("cmt"), author_key=caller.key_id, body=command.body, created_at=now)
        await conn.execute(store.INSERT_COMMENT, out.id, case_id, out.author_key, out.body, now)
        await _audit(conn, who, caller, case)
    return out


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# A queue cursor: the last case's next_due in microseconds since the epoch
# ("n" when it has none), a dot, its id.
# at most 17 digits: microseconds to the year 5138, past any deadline, short of where datetime ends (9999)
CURSOR_PATTERN = r"^(?:[0-9]{1,17}|n)\.[a-z]{1,8}_[0-9a-z]{26}$"


def parse_cursor(cursor: str) -> tuple[datetime | None, str]:
    due, _, case_id = cursor.partition(".")
    if due == "n":
        return None, case_id
    try:
        return EPOCH + timedelta(microseconds=int(due)), case_id
    except OverflowError:  # past the year 9999: no cursor of ours
        raise Problem(
            400,
            "invalid-request",
            "Invalid request",
            "invalid query parameter",
            [FieldError("query.cursor", "not a cursor this endpoint gave")],
        ) from None


def make_cursor(case: Case) -> str:
    due = case.next_due
    micros = "n" if due is None else str((due - EPOCH) // timedelta(microseconds=1))
    return f"{micros}.{case.id}"


async def queue(
    pool: database.Pool,
    caller: Principal,
    who: audit.Access,
    *,
    status: CaseStatus | None,
    type: CaseType | None,
    assignee_key: str | None,
    account_id: str | None,
    breached: bool | None,
    cursor: str | None,
    limit: int,
) -> CasePage:
    after_due, after_id = parse_cursor(cursor) if cursor else (None, None)
    async with database.transaction(pool) as conn:
        rows = await conn.fetch(
            store.QUEUE,
            status and status.value,
            type and type.value,
            assignee_key,
            account_id,
            breached,
            after_due,
            after_id,
            limit + 1,
        )
        cases = [store.case_from_row(r) for r in rows[:limit]]
        touched: dict[str, list[str]] = {}
        for case in cases:
            if audit.crosses(caller, case.account_id):
                ids = touched.setdefault(case.account_id, [])
                if case.shipment_id:
                    ids.append(case.shipment_id)
        if touched:
            await audit.record_by_account(conn, who, touched)
    more = len(rows) > limit
    return CasePage(items=[wire.case_out(c) for c in cases], next_cursor=make_cursor(cases[-1]) if more else None)


# -- policies and automatic opening --------------------------------------------


async def policies(pool: database.Pool, caller: Principal, who: audit.Access, account_id: str) -> Policies:
    async with database.transaction(pool) as conn:
        if await conn.fetchval(store.ACCOUNT, account_id) is None:
            raise not_found("account")
        rows = await conn.fetch(store.POLICIES, account_id)
        automatic = await conn.fetch(store.AUTO_OPEN_ALL, account_id)
        if audit.crosses(caller, account_id):
            await audit.record(conn, who, account_id=account_id)
    return Policies(
        items=[
            PolicyOut(
                type=r["type"],
                priority=r["priority"],
                respond_within_seconds=int(r["respond_within"].total_seconds()),
                resolve_within_seconds=int(r["resolve_within"].total_seconds()),
                overridden=r["overridden"],
            )
            for r in rows
        ],
        automatic=PutAutomatic(
            **{
                r["trigger"]: Automatic(
                    type=None if r["type"] is None else CaseType(r["type"]), priority=Priority(r["priority"])
                )
                for r in automatic
            }
        ),
    )


async def put_policies(
    pool: database.Pool, caller: Principal, who: audit.Access, account_id: str, command: PutPolicies
) -> Policies:
    """New promises apply to cases opened from now on; open cases keep theirs."""
    async with database.transaction(pool) as conn:
        if await conn.fetchval(store.ACCOUNT, account_id) is None:
            raise not_found("account")
        await conn.executemany(
            store.PUT_POLICY,
            [
                (
                    account_id,
                    item.type.value,
                    item.priority.value,
                    timedelta(seconds=int(item.respond_within_seconds)),
                    timedelta(seconds=int(item.resolve_within_seconds)),
                )
                for item in command.items
            ],
        )
        if audit.crosses(caller, account_id):
            await audit.record(conn, who, account_id=account_id)
    return await policies(pool, caller, who, account_id)


async def put_automatic(
    pool: database.Pool, caller: Principal, who: audit.Access, account_id: str, command: PutAutomatic
) -> Policies:
    settings = command.items()
    async with database.transaction(pool) as conn:
        if await conn.fetchval(store.ACCOUNT, account_id) is None:
            raise not_found("account")
        await conn.execute(store.DELETE_AUTO_OPEN, account_id, [trigger.value for trigger, _ in settings])
        await conn.executemany(
            store.PUT_AUTO_OPEN,
            [
                (account_id, trigger.value, setting.type and setting.type.value, setting.priority.value)
                for trigger, setting in settings
            ],
        )
        if audit.crosses(caller, account_id):
            await audit.record(conn, who, account_id=account_id)
    return await policies(pool, caller, who, account_id)


# -- notes ---------------------------------------------------------------------


async def add_note(
    pool: database.Pool, caller: Principal, who: audit.Access, shipment_id: str, command: AddText
) -> NoteOut:
    """An internal note: in no change, so in no customer's feed, live stream or webhook."""
    now = utcnow()
    async with database.transaction(pool) as conn:
        account_id = await conn.fetchval(store.SHIPMENT_ACCOUNT, shipment_id)
        if account_id is None:
            raise not_found()
        note = NoteOut(
            id=new_id("not"), shipment_id=shipment_id, author_key=caller.key_id, body=command.body, created_at=now
        )
        await conn.execute(store.INSERT_NOTE, note.id, shipment_id, account_id, note.author_key, note.body, now)
        if audit.crosses(caller, account_id):
            await audit.record(conn, who, account_id=account_id, shipment_ids=[shipment_id])
    return note


async def notes(pool: database.Pool, caller: Principal, who: audit.Access, shipment_id: str) -> Notes:
    async with database.transaction(pool) as conn:
        account_id = await conn.fetchval(store.SHIPMENT_ACCOUNT, shipment_id)
        if account_id is None:
            raise not_found()
        rows = await conn.fetch(store.NOTES, shipment_id)
        if audit.crosses(caller, account_id):
            await audit.record(conn, who, account_id=account_id, shipment_ids=[shipment_id])
    return Notes(items=[NoteOut(**dict(r)) for r in rows])
