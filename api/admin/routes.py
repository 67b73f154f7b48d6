"""Accounts and keys: admin only. A key's secret is in the answer that creates it, and nowhere else."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, delete, post
from litestar.params import FromPath
from msgspec import Meta

from api.shell import database, keys
from api.shell.auth import authenticate, require
from api.shell.errors import FieldError, decode, invalid, not_found
from api.shell.openapi import documented_body
from api.shell.responses import json_response
from domain.shipment import NO_NUL, Carrier, normalize_carrier

_encode = msgspec.json.Encoder().encode


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


class AdminController(Controller):
    path = "/v1"
    tags = ("admin",)

    @post("/accounts", status_code=201, summary="Create an account", operation_class=documented_body(CreateAccount))
    async def create_account(self, request: Request) -> Response[AccountOut]:
        require(await authenticate(request), "admin", what="endpoint")
        command = decode(await request.body(), CreateAccount)
        # the reports use PostgreSQL's time zones, so PostgreSQL says which exist
        known = await request.app.state.pool.fetchval(
            "select exists(select 1 from pg_timezone_names where name = $1)", command.timezone
        )
        if not known:
            raise invalid(
                [
                    FieldError(
                        "$.timezone", f"unknown time zone {command.timezone!r} (an IANA name such as Europe/Madrid)"
                    )
                ]
            )
        async with database.transaction(request.app.state.pool) as conn:
            row = await keys.create_account(conn, command.name, command.timezone)
        return json_response(_encode(AccountOut(**row)), 201)

    @post(
        "/keys",
        status_code=201,
        summary="Create an API key; the secret is shown once",
        operation_class=documented_body(CreateKey),
    )
    async def create_key(self, request: Request) -> Response[KeyOut]:
        require(await authenticate(request), "admin", what="endpoint")
        command = decode(await request.body(), CreateKey)
        if command.role == "customer" and command.account_id is None:
            raise invalid([FieldError("$.account_id", "a customer key needs the account it belongs to")])
        if command.role != "customer" and command.account_id is not None:
            raise invalid([FieldError("$.account_id", "only customer keys belong to an account")])
        if command.role != "carrier" and command.carrier is not None:
            raise invalid([FieldError("$.carrier", "only carrier keys are limited to a carrier")])
        pool = request.app.state.pool
        if command.account_id is not None and not await keys.account_exists(pool, command.account_id):
            raise invalid([FieldError("$.account_id", "no such account")])
        carrier = None if command.carrier is None else normalize_carrier(command.carrier)
        async with database.transaction(pool) as conn:
            row, secret = await keys.create_key(conn, command.role, command.account_id, carrier, command.name)
        return json_response(_encode(KeyOut(**row, secret=secret)), 201)

    @delete("/keys/{key_id:str}", status_code=204, summary="Revoke a key, live connections included")
    async def revoke_key(self, request: Request, key_id: FromPath[str]) -> None:
        require(await authenticate(request), "admin", what="endpoint")
        async with database.transaction(request.app.state.pool) as conn:
            if not await keys.revoke_key(conn, key_id):
                raise not_found("key")
        # this process need not wait for its own notification
        request.app.state.key_cache.clear()
