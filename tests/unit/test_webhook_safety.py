"""Webhook URLs: only https to public addresses, unless private ones are allowed."""

from __future__ import annotations

import pytest

from api.webhooks.safety import UnsafeUrl, check_url


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://192.168.1.5:8443/hook",
        "https://localhost/hook",
    ],
)
async def test_a_url_to_a_private_address_is_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="not a public address"):
        await check_url(url, allow_private=False)


async def test_a_plain_http_url_is_refused() -> None:
    with pytest.raises(UnsafeUrl, match="only https"):
        await check_url("http://93.184.215.14/hook", allow_private=False)


async def test_a_url_with_credentials_is_refused() -> None:
    with pytest.raises(UnsafeUrl, match="credentials"):
        await check_url("https://user:pw@93.184.215.14/hook", allow_private=False)


async def test_a_public_address_is_allowed_and_pinned() -> None:
    checked = await check_url("https://93.184.215.14:8443/hook", allow_private=False)
    assert checked.addresses == ("93.184.215.14",)
    assert checked.port == 8443


async def test_the_setting_allows_http_to_loopback() -> None:
    checked = await check_url("http://127.0.0.1:9000/hook", allow_private=True)
    assert checked.addresses == ("127.0.0.1",)
