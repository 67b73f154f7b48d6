"""Webhook signatures: HMAC-SHA256 over timestamp and body, both secrets during a rotation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from api.webhooks.signing import new_secret, signature_header, verify


def test_a_receiver_verifies_the_signature_with_its_secret() -> None:
    secret = new_secret()
    header = signature_header([secret], 1_700_000_000, b'{"seq":1}')
    assert verify(secret, 1_700_000_000, b'{"seq":1}', header)


def test_a_changed_body_or_timestamp_does_not_verify() -> None:
    secret = new_secret()
    header = signature_header([secret], 1_700_000_000, b'{"seq":1}')
    assert not verify(secret, 1_700_000_000, b'{"seq":2}', header)
    assert not verify(secret, 1_700_000_001, b'{"seq":1}', header)


def test_during_a_rotation_both_the_old_and_the_new_secret_verify() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([new, old], 1_700_000_000, b"{}")
    assert verify(old, 1_700_000_000, b"{}", header)
    assert verify(new, 1_700_000_000, b"{}", header)
    assert not verify(new_secret(), 1_700_000_000, b"{}", header)


def test_the_readme_snippet_verifies_what_we_sign() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Webhooks", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    secret, now = new_secret(), int(time.time())
    header = signature_header([secret], now, b'{"seq":7}')
    assert namespace["verify"](secret, str(now), b'{"seq":7}', header)
    assert not namespace["verify"](
        secret, str(now - 3600), b'{"seq":7}', signature_header([secret], now - 3600, b'{"seq":7}')
    )
