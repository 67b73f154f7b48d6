"""The support desk: GET /v1/support/search, a lookup across every account."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from api.shell import audit
from api.shell.auth import Principal, allow
from api.shell.database import Pool
from api.shell.errors import problems
from api.support import service

MAX_QUERY = 200
# 1 to 200 characters once trimmed of blanks (space, tab, line breaks) on both ends;
# written in characters both Python's and JavaScript's regular expressions read alike
_BLANK = r"[ \t\n\r\x0b\x0c]"
_SOLID = r"[^ \t\n\r\x0b\x0c\x00]"
QUERY_PATTERN = rf"^{_BLANK}*{_SOLID}(?:[^\x00]{{0,{MAX_QUERY - 2}}}{_SOLID})?{_BLANK}*$"

Query = Annotated[
    str,
    QueryParameter(
        min_length=1,
        max_length=1000,
        pattern=QUERY_PATTERN,
        description=(
            "what to look for: a tracking number (spaces and case ignored), a reference, a recipient's email "
            "(case ignored), phone (any form: read in E.164) or name (accents and case ignored, similar names "
            f"match; a query of {service.NAME_MIN_LENGTH} characters or more with no digit and no @); 1 to "
            f"{MAX_QUERY} characters once trimmed "
            "of blanks, at most 1000 as sent"
        ),
    ),
]


class SupportController(Controller):
    path = "/v1/support"
    tags = ("support",)

    @get(
        "/search",
        summary="Find shipments in every account by tracking number, reference, or the recipient's email, phone or name",
        description=(
            "Ranked: exact identifiers first (tracking number, reference, email, phone, in that order), then "
            "names by similarity; ties newest first. Each search is written to the audit log with the ids it answered."
        ),
        guards=[allow("support", "admin")],
        responses=problems(400, 401, 404, 503),
    )
    async def search_shipments(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[Pool],
        caller: NamedDependency[Principal],
        q: Query,
        limit: Annotated[int, QueryParameter(ge=1, le=50, description="at most this many hits")] = 20,
    ) -> service.SearchAnswer:
        return await service.search(pool, audit.access(request, caller), q, limit)
