"""Accounts and keys: admin only. A key's secret is in the answer that creates it, and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, delete, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from msgspec import Meta

from api.shell import database, keys
from api.shell.auth import allow
from api.shell.body import JsonBody
from api.shell.errors import FieldError, invalid, not_found, problems
from domain.shipment import NO_NUL, Carrier, normalize_carrier


class CreateAccount(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
    timezone: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] = "UTC"


class AccountOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    timezone: str
    created_at: datetime


class CreateKey(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    role: Literal["customer", "carrier", "support", "admin"]
    account_id: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] | None = None
    carrier: Carrier | None = None
    name: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] | None = None


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
    async def create_account(self, pool: NamedDependency[database.Pool], data: JSONBody[CreateAccount]) -> AccountOut:
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
        async with database.transaction(pool) as conn:
            row = await keys.create_account(conn, command.name, command.timezone)
        return AccountOut(**row)

    @post(
        "/keys",
        status_code=201,
        summary="Create an API key; the secret is shown once",
        dto=JsonBody[CreateKey],
        return_dto=None,
        responses=problems(400, 401, 404, 413, 503),
    )
    async def create_key(self, pool: NamedDependency[database.Pool], data: JSONBody[CreateKey]) -> KeyOut:
        command = data
        if command.role == "customer" and command.account_id is None:
            raise invalid([FieldError("$.account_id", "a customer key needs the account it belongs to")])
        if command.role != "customer" and command.account_id is not None:
            raise invalid([FieldError("$.account_id", "only customer keys belong to an account")])
        if command.role != "carrier" and command.carrier is not None:
            raise invalid([FieldError("$.carrier", "only carrier keys are limited to a carrier")])
        if command.account_id is not None and not await keys.account_exists(pool, command.account_id):
            raise invalid([FieldError("$.account_id", "no such account")])
        carrier = None if command.carrier is None else normalize_carrier(command.carrier)
        async with database.transaction(pool) as conn:
            row, secret = await keys.create_key(conn, command.role, command.account_id, carrier, command.name)
        return KeyOut(**row, secret=secret)

    @delete(
        "/keys/{key_id:str}",
        status_code=204,
        summary="Revoke a key, live connections included",
        responses=problems(400, 401, 404, 503),
    )
    async def revoke_key(self, request: Request, pool: NamedDependency[database.Pool], key_id: KeyId) -> None:
        async with database.transaction(pool) as conn:
            if not await keys.revoke_key(conn, key_id):
                raise not_found("key")
        # this process need not wait for its own notification
        request.app.state.key_cache.clear()
