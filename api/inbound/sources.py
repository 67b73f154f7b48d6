"""The sources `POST /v1/inbound/{source}` takes: each one's adapter, and how
the sources that sign their webhooks sign them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable
from typing import NamedTuple

from api.inbound.adapters import (
    aftership,
    canada_post,
    correos,
    correos_express,
    ctt_express,
    dhl,
    dhl_express,
    easypost,
    fedex,
    gls,
    ups,
    usps,
)
from api.inbound.adapters.base import Adapted, Context


class Signature(NamedTuple):
    header: str
    sign: Callable[[str, bytes], str]


def aftership_signature(secret: str, body: bytes) -> str:
    """AfterShip: `aftership-hmac-sha256`, base64 of HMAC-SHA256 of the body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def easypost_signature(secret: str, body: bytes) -> str:
    """EasyPost: `X-Hmac-Signature`, `hmac-sha256-hex=` and the hex HMAC-SHA256
    of the body, keyed by the secret NFKD-normalised (as EasyPost's clients do)."""
    key = unicodedata.normalize("NFKD", secret).encode()
    return "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class Source(NamedTuple):
    adapt: Callable[[bytes, Context], Adapted]
    signature: Signature | None = None


SOURCES: dict[str, Source] = {
    dhl.SOURCE: Source(dhl.adapt),
    dhl_express.SOURCE: Source(dhl_express.adapt),
    ups.SOURCE: Source(ups.adapt),
    fedex.SOURCE: Source(fedex.adapt),
    usps.SOURCE: Source(usps.adapt),
    canada_post.SOURCE: Source(canada_post.adapt),
    correos.SOURCE: Source(correos.adapt),
    correos_express.SOURCE: Source(correos_express.adapt),
    ctt_express.SOURCE: Source(ctt_express.adapt),
    gls.SOURCE: Source(gls.adapt),
    aftership.SOURCE: Source(aftership.adapt, Signature("aftership-hmac-sha256", aftership_signature)),
    easypost.SOURCE: Source(easypost.adapt, Signature("x-hmac-signature", easypost_signature)),
}
SIGNED = sorted(name for name, source in SOURCES.items() if source.signature is not None)


def verify(source: Source, secret: str, body: bytes, header: str | None) -> bool:
    if source.signature is None or not header:
        return False
    expected = source.signature.sign(secret, body)
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def new_secret() -> str:
    """A fresh signing secret, shown to the account once."""
    return "insec_" + secrets.token_urlsafe(32)
