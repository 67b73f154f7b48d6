"""Satisfaction after delivery: the recipient's rating, and the link that lets
them give it without an API key.

A feedback link names one shipment and the instant it stops being valid (30
days after the delivery), signed with HMAC-SHA256 under a key the service keeps
(keys rotate by kid: the newest signs, every known one verifies). The link is
the whole credential, so it is checked in constant time and says nothing about
why it is refused beyond "no such link" or "expired". It is single-use by the
store (one rating per shipment), not by the token: the same delivery always
gives the same link, so a shipper reading the shipment twice sends the same one.

A rating is 1 to 5; 4 and 5 are satisfied (CSAT counts them), 1 and 2 are low
(a complaint case may open).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

VALID_FOR = timedelta(days=30)
COMMENT_MAX = 2000
MAC_BYTES = 16  # 128 bits: forging one is as hard as guessing a random UUID
ID_MAX_BYTES = 64
LOW_RATINGS = frozenset({1, 2})
SATISFIED_RATINGS = frozenset({4, 5})

# what a token is for, inside its MAC
FEEDBACK = b"ontime-feedback-v1"
TRACKING = b"ontime-tracking-v1"
# a tracking page's link works this long after the shipment was made
TRACKING_VALID_FOR = timedelta(days=365)

# kid (1 byte), expiry in whole seconds since the epoch (4 bytes, unsigned), then the shipment id
_HEAD = struct.Struct(">BI")

Rating = Annotated[int, Meta(ge=1, le=5, description="1 (very unhappy) to 5 (very happy)")]
Comment = Annotated[
    str,
    Meta(max_length=COMMENT_MAX, pattern="^[^\\x00]*$", description=f"in the recipient's words, at most {COMMENT_MAX}"),
]


class GiveFeedback(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the recipient posts."""

    rating: Rating
    comment: Comment | None = None

    def __post_init__(self) -> None:
        if self.comment is not None:
            self.comment = self.comment.strip() or None


def is_low(rating: int) -> bool:
    return rating in LOW_RATINGS


def is_satisfied(rating: int) -> bool:
    return rating in SATISFIED_RATINGS


def expires_at(delivered_at: datetime) -> datetime:
    """When the link for a delivery stops being valid, to the whole second."""
    return (delivered_at + VALID_FOR).replace(microsecond=0)


class LinkRefused(Exception):
    """The token is not one of ours: malformed, unknown key, or a bad signature."""


class LinkExpired(Exception):
    def __init__(self, shipment_id: str, expired_at: datetime) -> None:
        super().__init__(f"the link expired at {expired_at.isoformat()}")
        self.shipment_id = shipment_id
        self.expired_at = expired_at


@dataclass(frozen=True)
class Link:
    shipment_id: str
    expires_at: datetime


@dataclass(frozen=True)
class LinkKeys:
    """The signing keys by kid; `current` signs new links."""

    keys: dict[int, bytes]
    current: int

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"no key with kid {self.current}")
        for kid, secret in self.keys.items():
            if not 0 <= kid <= 255 or len(secret) < 32:
                raise ValueError(f"key {kid}: a kid is 0-255 and a secret at least 32 bytes")

    def sign(self, shipment_id: str, delivered_at: datetime) -> str:
        """The feedback token for a delivery: URL-safe, unpadded."""
        return self.sign_for(FEEDBACK, shipment_id, expires_at(delivered_at))

    def verify(self, token: str, now: datetime) -> Link:
        """The feedback link the token names; LinkRefused if it is not ours, LinkExpired if it was."""
        return self.verify_for(FEEDBACK, token, now)

    def sign_for(self, purpose: bytes, shipment_id: str, expires: datetime) -> str:
        """A token naming a shipment for one purpose (a token for one never verifies for another)."""
        ident = shipment_id.encode()
        if not ident or len(ident) > ID_MAX_BYTES:
            raise ValueError("a shipment id is 1 to 64 bytes")
        expiry = min(max(int(expires.timestamp()), 0), 2**32 - 1)
        body = _HEAD.pack(self.current, expiry) + ident
        return _b64(body + _mac(self.keys[self.current], purpose, body))

    def verify_for(self, purpose: bytes, token: str, now: datetime) -> Link:
        if not 0 < len(token) <= 200:
            raise LinkRefused
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise LinkRefused from None
        if len(raw) <= _HEAD.size + MAC_BYTES or _b64(raw) != token:  # one spelling per token
            raise LinkRefused
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        kid, expiry = _HEAD.unpack_from(body)
        secret = self.keys.get(kid)
        if secret is None or not hmac.compare_digest(mac, _mac(secret, purpose, body)):
            raise LinkRefused
        try:
            shipment_id = body[_HEAD.size :].decode()
        except UnicodeDecodeError:  # signed by us, so never; but never a 500 either
            raise LinkRefused from None
        link = Link(shipment_id=shipment_id, expires_at=datetime.fromtimestamp(expiry, UTC))
        if now >= link.expires_at:
            raise LinkExpired(shipment_id, link.expires_at)
        return link


def _mac(secret: bytes, purpose: bytes, body: bytes) -> bytes:
    return hmac.new(secret, purpose + b"\x00" + body, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
