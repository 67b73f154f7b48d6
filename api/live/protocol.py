"""The live protocol's messages (see docs/live.md), as msgspec tagged unions.

Change messages (`created`, `event`, `promise_revised`, `late`, `at_risk`) are not here:
they are the change log's bodies with `seq` spliced in, encoded once per change."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

ShipmentIds = Annotated[list[Annotated[str, Meta(max_length=64, pattern=r"^[^\x00]*$")]], Meta(max_length=1000)]


class Auth(msgspec.Struct, tag_field="type", tag="auth", forbid_unknown_fields=True):
    token: str


class Subscribe(msgspec.Struct, tag_field="type", tag="subscribe", forbid_unknown_fields=True, kw_only=True):
    shipments: ShipmentIds | Literal["all"]
    since: Annotated[int, Meta(ge=0)] | None = None
    # support and admin keys name the account whose "all" they want
    account_id: Annotated[str, Meta(max_length=64, pattern=r"^[^\x00]*$")] | None = None


class Unsubscribe(msgspec.Struct, tag_field="type", tag="unsubscribe", forbid_unknown_fields=True, kw_only=True):
    shipments: ShipmentIds | Literal["all"]


ClientMessage = Auth | Subscribe | Unsubscribe


class Subscribed(msgspec.Struct, tag_field="type", tag="subscribed", kw_only=True):
    shipments: list[str] | Literal["all"]
    account_id: str | None
    # the highest seq this connection has been sent; `since` for a later resume
    seq: int


class Unsubscribed(msgspec.Struct, tag_field="type", tag="unsubscribed", kw_only=True):
    shipments: list[str] | Literal["all"]


class Error(msgspec.Struct, tag_field="type", tag="error", kw_only=True):
    detail: str
    path: str | None = None


client_decoder = msgspec.json.Decoder(ClientMessage)
encode = msgspec.json.Encoder().encode

PING = '{"type":"ping"}'

# close codes
UNAUTHORIZED = 4401
TOO_SLOW = 4008
REVOKED = 4403
