"""Identifiers: a prefix naming the kind, then 26 characters of a ULID-style
value (48 bits of milliseconds, 80 random bits, Crockford base32), so ids sort
by creation time and keyset pagination by id is newest-first for free."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
