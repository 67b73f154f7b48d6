"""The signature a receiver checks: HMAC-SHA256 over the timestamp, a dot and the body."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_PREFIX = "v1="


def new_secret() -> str:
    """A fresh signing secret, shown to the account once."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_header(secrets_in_force: list[str], timestamp: int, body: bytes) -> str:
    """One signature per secret in force (two during a rotation), comma-separated."""
    return ",".join(signature(secret, timestamp, body) for secret in secrets_in_force)


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """What a receiver does: any of the header's signatures made with its secret."""
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in header.split(","))
