"""Where the hub may connect when an operator or a platform payload names the place.

An operator's API base URL or mail server, and a URL a platform hands over in a
callback (DingTalk's sessionWebhook), are checked before the hub calls them, so
that a saved setting or a forged callback cannot turn the hub into a client of
the company's internal network. Refused: loopback, private, link-local (cloud
metadata at 169.254.169.254), multicast, reserved and unspecified addresses,
whether written as an address or behind a host name, unless the hub runs with
SCRM_ALLOW_PRIVATE_API_BASE (the demo and the tests, whose simulators are on
127.0.0.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeDestination(ValueError):
    """The hub will not connect there; the message says why and what to change."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
                or address.is_reserved or address.is_unspecified)


async def check_host(host: str, *, allow_private: bool, what: str) -> None:
    """Refuse `host` unless every address it stands for is public (or private ones are allowed)."""
    if allow_private:
        return
    host = host.strip().strip("[]")
    if not host:
        raise UnsafeDestination(f"{what}: no host name")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UnsafeDestination(f"{what}: the host {host!r} does not resolve; check its spelling") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in found]
    private = [str(a) for a in addresses if not _is_public(a)]
    if private:
        raise UnsafeDestination(
            f"{what}: {host} is an internal address ({', '.join(sorted(set(private)))}); the hub only connects "
            "to public hosts. To use a simulator or proxy on your own network, start the hub with "
            "SCRM_ALLOW_PRIVATE_API_BASE=true")


async def check_url(url: str, *, allow_private: bool, what: str) -> None:
    """An http(s) URL whose host passes `check_host`."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UnsafeDestination(f"{what}: {url[:200]!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise UnsafeDestination(f"{what}: {url[:200]!r} is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise UnsafeDestination(f"{what}: a URL with a user name or password in it is refused")
    await check_host(hostname, allow_private=allow_private, what=what)
