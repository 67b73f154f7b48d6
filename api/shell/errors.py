"""The one place failures become RFC 9457 problem details."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.enums import ParamType
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from api.shell.database import CONNECTION_LOST, DatabaseUnavailable
from domain.errors import InvalidField

if TYPE_CHECKING:
    from typing_extensions import TypeForm  # PEP 747: a class, a union or list[...] alike

T = TypeVar("T")

log = logging.getLogger("ontime")

PROBLEM_TYPE = "https://ontime.dev/problems/"


class FieldError(msgspec.Struct):
    path: str
    message: str


class ProblemBody(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem: `type` names the kind of failure, `errors` the fields at fault."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = []


PROBLEM_JSON = "application/problem+json"

_PROBLEM_WHEN = {
    400: "The request is not valid: `errors` names the field at fault (nothing was written)",
    401: "No API key, or an unknown or revoked one",
    404: "No such resource, or not one this key may see",
    409: "The request conflicts with the resource's state",
    410: "The link has expired",
    413: "The request body is too large",
    422: "The request is well formed but cannot be processed (e.g. an Idempotency-Key reused with another body)",
    429: "Too many requests; retry after `Retry-After` seconds",
    503: "The database is unavailable; retry after `Retry-After` seconds",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The problem responses a handler may answer, for the OpenAPI document."""
    return {
        status: ResponseSpec(
            data_container=ProblemBody,
            description=_PROBLEM_WHEN[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }


class Problem(Exception):
    """A failure the client can act on."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.errors = errors or []
        self.headers = headers


def not_found(what: str = "shipment") -> Problem:
    return Problem(404, "not-found", "Not found", f"no such {what}")


def named_not_found(path: str, what: str) -> Problem:
    """A 404 for a resource the body names (e.g. `$.account_id`), naming the field."""
    return Problem(404, "not-found", "Not found", f"no such {what}", [FieldError(path, f"no such {what}")])


_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
# msgspec's words for a constraint, where they would puzzle a client
_PLAIN = {"Expected `str` matching regex '^[^\\x00]*$'": "text may not contain NUL characters"}
_NAMED_FIELD = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]*)`$")


def field_error(exc: msgspec.ValidationError | ValueError, prefix: str = "$") -> FieldError:
    """Split msgspec's "message - at `$.path`" into the path and the message."""
    match = _AT_PATH.match(str(exc))
    assert match is not None
    path = match["path"] or "$"
    message = _PLAIN.get(match["message"], match["message"])
    named = _NAMED_FIELD.match(message)
    if named:
        path = f"{path}.{named[1]}"
    if prefix != "$":
        path = prefix + path[1:]
    return FieldError(path=path, message=message)


def invalid(errors: list[FieldError], detail: str = "the request body is not valid") -> Problem:
    return Problem(400, "invalid-request", "Invalid request", detail, errors)


def decode(body: bytes, type_: TypeForm[T], *, prefix: str = "$") -> T:
    """Decode a JSON body into a command, or raise a 400 naming the field."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        cause = exc.__cause__
        if isinstance(cause, InvalidField):
            # raised by a command's __post_init__: msgspec's path is the
            # command's own, the field is the error's
            path = field_error(exc, prefix).path
            raise invalid([FieldError(path=f"{path}.{cause.field}", message=cause.message)]) from None
        raise invalid([field_error(exc, prefix)]) from None
    except msgspec.DecodeError as exc:
        raise Problem(400, "malformed-json", "Malformed JSON", str(exc)) from None
    except RecursionError:
        raise Problem(400, "malformed-json", "Malformed JSON", "the JSON is nested too deeply") from None


def problem_response(problem: Problem) -> Response[bytes]:
    body = ProblemBody(
        type=PROBLEM_TYPE + problem.slug,
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        errors=problem.errors,
    )
    return Response(
        content=msgspec.json.encode(body),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _on_problem(_: Request[Any, Any, Any], exc: Problem) -> Response[bytes]:
    return problem_response(exc)


_HTTP_SLUGS = {
    400: ("invalid-request", "Invalid request"),
    401: ("unauthorized", "Unauthorized"),
    # only the pages' CSRF middleware (api/pages/session.py) refuses with a 403
    403: ("csrf", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
}


def _parameter_path(request: Request[Any, Any, Any], key: str, source: str) -> str:
    """The name a client sent a parameter by: `query.state`, `header.Idempotency-Key`."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    return f"{source}.{getattr(getattr(parameter, 'kwarg_definition', None), 'name', None) or key}"


def _on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("error", exc.__class__.__name__))
    errors: list[FieldError] = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if not isinstance(item, dict):
                continue
            key, message = str(item.get("key", "")), str(item.get("message", ""))
            source = item.get("source", "query")
            source = str(getattr(source, "value", source))
            if key == "data":  # the body was empty: as malformed as JSON gets
                return problem_response(Problem(400, "malformed-json", "Malformed JSON", "the request body is empty"))
            errors.append(FieldError(_parameter_path(request, key, source), message))
        exc.detail = "invalid query parameter" if all(e.path.startswith("query.") for e in errors) else title
    detail = exc.detail if exc.detail and exc.detail != title else None
    headers = exc.headers
    if exc.status_code == 403:
        detail = "the form is stale or came from another site: reload the page and try again"
    if exc.status_code == 413:
        detail = "the request body is larger than this endpoint accepts (1 MiB)"
    if exc.status_code == 429:
        # Litestar's rate limiter says when the window resets; clients read Retry-After
        reset = (headers or {}).get("RateLimit-Reset", "60")
        headers = {**(headers or {}), "Retry-After": reset}
        detail = f"too many requests from this address or for this link; retry after {reset} seconds"
    return problem_response(Problem(exc.status_code, slug, title, detail, errors, headers))


def _on_connection_lost(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """DatabaseUnavailable (the pool and transaction() raise it for any failure
    to reach the database), or a connection lost under a query run on the pool
    directly, outside transaction()."""
    log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return problem_response(
        Problem(
            503,
            "database-unavailable",
            "Database unavailable",
            "the database cannot be reached just now; retry shortly (a write may or may not have been committed: "
            "creates with the same Idempotency-Key and events with an event_id are safe to repeat)",
            headers={"Retry-After": "1"},
        )
    )


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        Problem(500, "internal", "Internal server error", "this is a bug in ontime; it has been logged")
    )


exception_handlers: ExceptionHandlersMap = {
    Problem: _on_problem,
    HTTPException: _on_http_exception,
    **dict.fromkeys((DatabaseUnavailable, *CONNECTION_LOST), _on_connection_lost),
    Exception: _on_unexpected,
}


_QUERY_NAMES: dict[BaseRouteHandler, frozenset[str]] = {}


def _query_names(request: Request[Any, Any, Any]) -> frozenset[str]:
    """The query parameters the request's handler declares, worked out once per handler."""
    handler = request.route_handler
    names = _QUERY_NAMES.get(handler)
    if names is None:
        provided = handler.resolve_dependencies()  # the caller, the pool: never read from the query
        names = frozenset(
            getattr(field.kwarg_definition, "name", None) or name
            for name, field in handler.parsed_fn_signature.parameters.items()
            if getattr(field.kwarg_definition, "param_type", None) == ParamType.QUERY and name not in provided
        )
        _QUERY_NAMES[handler] = names
    return names


async def check_query(request: Request[Any, Any, Any]) -> None:
    """Before any handler: a query parameter the endpoint does not take is a 400
    (a misspelt filter must not silently widen a list), and PostgreSQL text cannot
    hold NUL, so a parameter with one is a 400 and a path with one names nothing
    (404). (async: Litestar runs a plain function hook on a worker thread.)"""
    # from the scope: request.url builds a URL object, on every request
    path: str = request.scope["path"]
    if not path.startswith("/v1/"):
        return
    if not request.scope.get("query_string"):  # most polls: nothing to check but the path
        if "\x00" in path:
            raise not_found("resource")
        return
    known = _query_names(request)
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name in seen:  # which one would it mean? none of ours takes a list
            raise invalid([FieldError(f"query.{name}", "given more than once")], "invalid query parameter")
        seen.add(name)
        if "\x00" in value or "\x00" in name:
            raise invalid([FieldError(f"query.{name}", "may not contain NUL characters")], "invalid query parameter")
        if name not in known:
            accepted = ", ".join(sorted(known)) or "none"
            raise invalid(
                [FieldError(f"query.{name}", f"not a parameter of this endpoint (it takes: {accepted})")],
                "invalid query parameter",
            )
    if "\x00" in path:
        raise not_found("resource")
