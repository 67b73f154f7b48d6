"""Accounts and keys: admin only. A key's secret is in the answer that creates it, and nowhere else."""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Annotated, Any, ClassVar, assert_never

import msgspec
from litestar import Controller, Request, delete, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from msgspec import Meta

from api.shell import audit, database, keys, phones
from api.shell.auth import Principal, Role, allow
from api.shell.body import JsonBody
from api.shell.errors import FieldError, invalid, named_not_found, not_found, problems
from domain.shipment import NO_NUL, Carrier, normalize_carrier

# The IANA names this Python knows, for the document (a client picks from them);
# PostgreSQL, whose zones the reports use, has the final word when one is sent.
# ("localtime" is this machine's own link, not an IANA name)
# Aliases that differ only in punctuation (GMT0, GMT+0, GMT-0) are listed once:
# client generators turn each into one identifier. The others are accepted all the same.
_ZONES = sorted(
    {
        re.sub(r"[^0-9A-Za-z]", "", zone).upper(): zone
        for zone in sorted(zoneinfo.available_timezones() - {"localtime"}, reverse=True)
    }.values()
)
TimeZone = Annotated[
    str,
    Meta(
        max_length=64,
        pattern=NO_NUL,
        description="an IANA time zone, such as Europe/Madrid: months in the reports are this account's",
        extra_json_schema={"extra": {"enum": _ZONES}} if _ZONES else {},  # Litestar reads "extra"
    ),
]


Country = Annotated[
    str,
    Meta(
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2, such as ES: recipients' phone numbers in national form are read as this "
        "country's (none: only numbers in international form, + or 00, are read)",
        extra_json_schema={"extra": {"enum": phones.COUNTRIES}},  # Litestar reads "extra"
    ),
]


class CreateAccount(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
    timezone: TimeZone = "UTC"
    country: Country | None = None


class AccountOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    timezone: str
    created_at: datetime
    country: str | None = None


class NewKey(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="role"):
    """A key to make; `role` says which, and each role takes its own fields."""

    name: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] | None = None


class NewCustomerKey(NewKey, tag="customer"):
    """Reads and writes one account's shipments."""

    account_id: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]


class NewCarrierKey(NewKey, tag="carrier"):
    """Posts events; limited to one carrier's shipments when `carrier` is given."""

    carrier: Carrier | None = None


class NewSupportKey(NewKey, tag="support"):
    """Reads every account; each read of a shipment is audited."""


class NewAdminKey(NewKey, tag="admin"):
    """Does everything."""


CreateKey = NewCustomerKey | NewCarrierKey | NewSupportKey | NewAdminKey


def role_of(key: CreateKey) -> Role:
    """The role a key to make asks for: its struct's `role` tag."""
    if isinstance(key, NewCustomerKey):
        return "customer"
    if isinstance(key, NewCarrierKey):
        return "carrier"
    if isinstance(key, NewSupportKey):
        return "support"
    if isinstance(key, NewAdminKey):
        return "admin"
    assert_never(key)


class CreateKeyBody(JsonBody[NewKey]):
    body_type: ClassVar[Any] = CreateKey


class KeyOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    role: str
    account_id: str | None
    carrier: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None = None
    secret: str | None = None


KeyId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00/]*$")]


class AdminController(Controller):
    path = "/v1"
    tags = ("admin",)
    guards = (allow("admin"),)

    @post(
        "/accounts",
        status_code=201,
        summary="Create an account",
        dto=JsonBody[CreateAccount],
        return_dto=None,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def create_account(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[database.Pool],
        caller: NamedDependency[Principal],
        data: JSONBody[CreateAccount],
    ) -> AccountOut:
        command = data
        # the reports use PostgreSQL's time zones, so PostgreSQL says which exist
        known = await pool.fetchval("select exists(select 1 from pg_timezone_names where name = $1)", command.timezone)
        if not known:
            raise invalid(
                [
                    FieldError(
                        "$.timezone", f"unknown time zone {command.timezone!r} (an IANA name such as Europe/Madrid)"
                    )
                ]
            )
        if command.country is not None and command.country not in phones.COUNTRIES:
            raise invalid([FieldError("$.country", f"unknown country {command.country!r} (ISO 3166-1 alpha-2)")])
        async with database.transaction(pool) as conn:
            row = await keys.create_account(conn, command.name, command.timezone, command.country)
            await audit.record(conn, audit.access(request, caller), account_id=row["id"])
        return AccountOut(**row)

    @post(
        "/keys",
        status_code=201,
        summary="Create an API key; the secret is shown once",
        dto=CreateKeyBody,
        return_dto=None,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def create_key(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[database.Pool],
        caller: NamedDependency[Principal],
        data: JSONBody[CreateKey],
    ) -> KeyOut:
        account_id = data.account_id if isinstance(data, NewCustomerKey) else None
        carrier = data.carrier if isinstance(data, NewCarrierKey) else None
        if account_id is not None and not await keys.account_exists(pool, account_id):
            raise named_not_found("$.account_id", "account")
        role = role_of(data)
        async with database.transaction(pool) as conn:
            row, secret = await keys.create_key(
                conn, role, account_id, None if carrier is None else normalize_carrier(carrier), data.name
            )
            await audit.record(conn, audit.access(request, caller), account_id=account_id, query=f"key {row['id']}")
        return KeyOut(**row, secret=secret)

    @delete(
        "/keys/{key_id:str}",
        status_code=204,
        summary="Revoke a key, live connections included",
        responses=problems(400, 401, 404, 503),
    )
    async def revoke_key(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[database.Pool],
        caller: NamedDependency[Principal],
        key_id: KeyId,
    ) -> None:
        async with database.transaction(pool) as conn:
            revoked = await keys.revoke_key(conn, key_id)
            if revoked is None:
                raise not_found("key")
            await audit.record(
                conn, audit.access(request, caller), account_id=revoked.account_id, query=f"key {key_id}"
            )
        # this process need not wait for its own notification
        request.app.state.key_cache.clear()
