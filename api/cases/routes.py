"""The support desk's cases (/v1/cases), each account's case promises and
automatic opening (/v1/accounts/{id}/case-policies), and internal notes on
shipments (/v1/shipments/{id}/notes): support and admin keys only."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from msgspec import Meta

from api import wire
from api.cases import desk
from api.shell import audit
from api.shell.auth import Principal, allow
from api.shell.body import JsonBody
from api.shell.database import Pool
from api.shell.errors import problems
from api.shell.params import TEXT_PATTERN
from domain.cases import CaseStatus, CaseType

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        max_length=40,
        pattern=TEXT_PATTERN,
        description=(
            'the case\'s `version` as read (e.g. "3"): if the case is at another version (or this is not one), '
            "a 409 and nothing written; `*` matches any"
        ),
    ),
]
PathId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00/]*$")]
DESK = allow("support", "admin")


def _version(if_match: str) -> int | None:
    """The version an If-Match names: None for `*` (any), -1 for one that names none (matches nothing)."""
    tag = if_match.strip().removeprefix("W/").strip('"')
    if tag == "*":
        return None
    return int(tag) if tag.isascii() and tag.isdigit() and len(tag) <= 9 else -1


class CaseController(Controller):
    path = "/v1/cases"
    tags = ("cases",)
    guards = [DESK]  # noqa: RUF012 (Litestar's own attribute)

    @post(
        "/",
        summary="Open a case on a shipment or an account",
        description=(
            "Its response and resolution deadlines follow the account's promise for its type and priority "
            "(the defaults, or the account's own: PUT /v1/accounts/{id}/case-policies)."
        ),
        dto=JsonBody[desk.OpenCase],
        return_dto=None,
        status_code=201,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def open_case(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        data: JSONBody[desk.OpenCase],
    ) -> wire.CaseOut:
        return await desk.open_case(pool, caller, audit.access(request, caller), data)

    @get(
        "/",
        summary="The queue: the deadline nearest to breach first",
        description="Cases with no deadline pending (resolved, closed) come last; ties by id.",
        responses=problems(400, 401, 404, 503),
    )
    async def list_cases(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        status: Annotated[CaseStatus | None, QueryParameter(description="only cases in this status")] = None,
        type: Annotated[CaseType | None, QueryParameter(description="only cases of this type")] = None,
        assignee: Annotated[
            str | None,
            QueryParameter(max_length=64, pattern=TEXT_PATTERN, description="only cases assigned to this key"),
        ] = None,
        account_id: Annotated[
            str | None, QueryParameter(max_length=64, pattern=TEXT_PATTERN, description="only this account's cases")
        ] = None,
        breached: Annotated[
            bool | None, QueryParameter(description="only cases with (true) or without (false) a breached deadline")
        ] = None,
        cursor: Annotated[
            str | None,
            QueryParameter(
                max_length=64, pattern=desk.CURSOR_PATTERN, description="`next_cursor` of the previous page"
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="at most this many cases")] = 50,
    ) -> desk.CasePage:
        return await desk.queue(
            pool,
            caller,
            audit.access(request, caller),
            status=status,
            type=type,
            assignee_key=assignee,
            account_id=account_id,
            breached=breached,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/{case_id:str}",
        summary="A case, its comments and its shipment's timeline",
        responses=problems(400, 401, 404, 503),
    )
    async def get_case(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        case_id: PathId,
    ) -> desk.CaseDetail:
        return await desk.read_case(pool, caller, audit.access(request, caller), case_id)

    @patch(
        "/{case_id:str}",
        summary="Move a case, assign it (or both)",
        description=(
            "Moves: open → in_progress | waiting_on_customer | resolved; in_progress ⇄ waiting_on_customer; "
            "either → resolved; resolved → closed; resolved or closed → open (reopened). A move not allowed, "
            "or an If-Match the case has moved on from (another agent's update), is a 409 and changes nothing."
        ),
        dto=JsonBody[desk.UpdateCase],
        return_dto=None,
        responses=problems(400, 401, 404, 409, 413, 503),
    )
    async def update_case(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        case_id: PathId,
        data: JSONBody[desk.UpdateCase],
        if_match: IfMatch = None,
    ) -> wire.CaseOut:
        version = None if if_match is None else _version(if_match)
        return await desk.update_case(pool, caller, audit.access(request, caller), case_id, data, version)

    @post(
        "/{case_id:str}/comments",
        summary="Comment on a case (internal); the first comment is the case's first response",
        dto=JsonBody[desk.AddText],
        return_dto=None,
        status_code=201,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def comment_on_case(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        case_id: PathId,
        data: JSONBody[desk.AddText],
    ) -> desk.CommentOut:
        return await desk.comment(pool, caller, audit.access(request, caller), case_id, data)


class CasePolicyController(Controller):
    path = "/v1/accounts/{account_id:str}"
    tags = ("cases",)
    guards = [DESK]  # noqa: RUF012 (Litestar's own attribute)

    @get(
        "/case-policies",
        summary="The account's case promises per type and priority, and which triggers open a case",
        responses=problems(400, 401, 404, 503),
    )
    async def get_case_policies(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        account_id: PathId,
    ) -> desk.Policies:
        return await desk.policies(pool, caller, audit.access(request, caller), account_id)

    @put(
        "/case-policies",
        summary="Set the account's own promise for some types and priorities",
        description="Applies to cases opened from now on.",
        dto=JsonBody[desk.PutPolicies],
        return_dto=None,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def put_case_policies(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        account_id: PathId,
        data: JSONBody[desk.PutPolicies],
    ) -> desk.Policies:
        return await desk.put_policies(pool, caller, audit.access(request, caller), account_id, data)

    @put(
        "/case-automatic",
        summary="Which triggers (late, exception, low_rating) open a case on their own, of which type and priority",
        dto=JsonBody[desk.PutAutomatic],
        return_dto=None,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def put_case_automatic(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        account_id: PathId,
        data: JSONBody[desk.PutAutomatic],
    ) -> desk.Policies:
        return await desk.put_automatic(pool, caller, audit.access(request, caller), account_id, data)


class NoteController(Controller):
    path = "/v1/shipments/{shipment_id:str}/notes"
    tags = ("support",)
    guards = [DESK]  # noqa: RUF012 (Litestar's own attribute)

    @post(
        "/",
        summary="Add an internal note to a shipment (never shown to customer or carrier keys, in no feed)",
        dto=JsonBody[desk.AddText],
        return_dto=None,
        status_code=201,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def add_note(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: PathId,
        data: JSONBody[desk.AddText],
    ) -> desk.NoteOut:
        return await desk.add_note(pool, caller, audit.access(request, caller), shipment_id, data)

    @get("/", summary="A shipment's internal notes, oldest first", responses=problems(400, 401, 404, 503))
    async def list_notes(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        shipment_id: PathId,
    ) -> desk.Notes:
        return await desk.notes(pool, caller, audit.access(request, caller), shipment_id)
