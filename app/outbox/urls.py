"""The SSRF guard for callback URLs: https to public addresses only, unless the host is allowlisted."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from app.core.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeCallbackUrl(Invalid):
    """A callback URL we refuse to call."""


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A callback URL that passed the guard, with the addresses it was checked at."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    allowlisted: bool

    def pinned(self) -> tuple[str, str]:
        """The URL rewritten to the first checked address, and the Host header it must carry.

        Connecting to the address we checked (not resolving again) is what beats DNS rebinding.
        """
        parts = urlsplit(self.url)
        address = ipaddress.ip_address(self.addresses[0])
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc)), parts.netloc.rsplit("@", 1)[-1]


# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the last 32 bits are the IPv4 address reached.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through: mapped, IPv4-compatible, 6to4, Teredo or NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address; the server's is public by construction or refused below
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))  # deprecated IPv4-compatible ::a.b.c.d
    return None


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be called, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner)  # ::ffff:127.0.0.1, 2002:7f00:1::, 64:ff9b::a9fe:a9fe reach the same hosts
            if reason:
                return reason
            if address.teredo is not None and refusal(address.teredo[0]):
                return refusal(address.teredo[0])
            address = inner
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


async def check_callback_url(url: str, *, allowlist: Iterable[str], loc: list[str | int] | None = None) -> CheckedUrl:
    """Parse, resolve and check a callback URL; raise UnsafeCallbackUrl naming the reason."""
    loc = loc or ["url"]

    def refuse(reason: str) -> UnsafeCallbackUrl:
        return UnsafeCallbackUrl(f"callback URL refused: {reason}", loc=loc)

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise refuse("not a valid URL") from exc
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".").lower()
    if scheme not in DEFAULT_PORTS or not host:
        raise refuse("an absolute http(s) URL with a host is required")
    if parts.username is not None or parts.password is not None:
        raise refuse("credentials in the URL are not allowed")
    port = port or DEFAULT_PORTS[scheme]
    allowlisted = host in {h.strip().rstrip(".").lower() for h in allowlist}
    if scheme != "https" and not allowlisted:
        raise refuse("only https is allowed")
    addresses = await _resolve(host, port)
    if not addresses:
        raise refuse("the host does not resolve")
    if not allowlisted:
        for address in addresses:
            reason = refusal(address)
            if reason:
                raise refuse(f"the host resolves to a {reason} address")
    return CheckedUrl(url=url.strip(), scheme=scheme, host=host, port=port,
                      addresses=tuple(str(a) for a in addresses), allowlisted=allowlisted)


async def validate_callback_url(url: str, *, allowlist: Iterable[str], loc: list[str | int] | None = None) -> str:
    """The URL if it may be called back (https, public addresses, or an allowlisted host); else 422."""
    return (await check_callback_url(url, allowlist=allowlist, loc=loc)).url


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of the host (a literal is its own answer); empty when it does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    # Strip an IPv6 zone ("fe80::1%eth0"): the address itself decides.
    found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    return list(dict.fromkeys(found))
