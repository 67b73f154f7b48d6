"""Which webhook URLs may be called: no server-side request forgery through them.

Only https, and only to public addresses: the host name is resolved and every
address it resolves to must be global. The caller connects to one of the checked
addresses (pinning it), so a second resolution cannot swap in a private one
(DNS rebinding). ONTIME_WEBHOOK_ALLOW_PRIVATE=true allows http and private
addresses, for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import msgspec

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, for a problem naming `url`."""


class CheckedUrl(msgspec.Struct, frozen=True):
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def split_url(url: str, *, allow_private: bool) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl(f"not a URL: {error}") from None
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        raise UnsafeUrl("only https URLs are allowed")
    if not parts.hostname:
        raise UnsafeUrl("the URL names no host")
    if parts.username or parts.password:
        raise UnsafeUrl("the URL may not carry credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_addresses(host: str, addresses: list[str], *, allow_private: bool) -> tuple[str, ...]:
    if not addresses:
        raise UnsafeUrl(f"{host} resolves to no address")
    if not allow_private:
        for text in addresses:
            if not is_public(ipaddress.ip_address(text.split("%", 1)[0])):
                raise UnsafeUrl(f"{host} resolves to {text}, which is not a public address")
    return tuple(dict.fromkeys(addresses))


async def check_url(url: str, *, allow_private: bool) -> CheckedUrl:
    """Resolve the URL's host and refuse it unless every address is public."""
    host, port = split_url(url, allow_private=allow_private)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeUrl(f"{host} does not resolve: {error}") from None
    addresses = [str(info[4][0]) for info in infos]
    return CheckedUrl(
        url=url, host=host, port=port, addresses=check_addresses(host, addresses, allow_private=allow_private)
    )
