"""Which network addresses a partner feed may live at: the SSRF classifier.

Pure functions, no I/O. ``parse_ip_literal`` reads a URL host the way
``inet_aton`` and browsers do, so every spelling of an address is caught
(``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``, ``[::ffff:127.0.0.1]``);
``blocked_reason`` says why an address must not be fetched from, or ``None``.

The guard in ``feeds.fetch`` applies both to the literal host *and* to every
address a name resolves to, at connect time and on every redirect hop.
"""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

_V4_BLOCKS: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
        ("192.0.2.0/24", "reserved (documentation)"),
        ("192.88.99.0/24", "reserved (6to4 relay)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("198.51.100.0/24", "reserved (documentation)"),
        ("203.0.113.0/24", "reserved (documentation)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_V6_BLOCKS: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "private (local NAT64)"),
        ("100::/64", "reserved (discard)"),
        ("2001::/23", "reserved (IETF protocol assignments, Teredo)"),
        ("2001:db8::/32", "reserved (documentation)"),
        ("3fff::/20", "reserved (documentation)"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private (site-local)"),
        ("ff00::/8", "multicast"),
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = IPv6Network("::/96")

_DEC = re.compile(r"^(0|[1-9][0-9]*)$")
_OCT = re.compile(r"^0[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-f]*$")
_NUMBERISH = re.compile(r"^(0x[0-9a-z]*|[0-9][0-9a-z]*)$")


def _ipv4_part(part: str) -> int | None:
    if _HEX.match(part):
        return int(part[2:] or "0", 16)
    if _OCT.match(part):
        return int(part, 8)
    if _DEC.match(part):
        return int(part, 10)
    return None


def parse_ipv4_literal(host: str) -> IPv4Address | None:
    """An IPv4 address in any ``inet_aton`` spelling, else ``None``.

    One to four dot-separated parts, each decimal, octal (leading ``0``) or
    hexadecimal (``0x``); the last part fills the remaining bytes
    (``127.1`` is ``127.0.0.1``, ``2130706433`` is too). Raises ``ValueError``
    for something that is plainly meant as a number but is out of range or
    malformed (``127.0.0.256``, ``08.1``), so it is refused instead of being
    handed to a resolver that might read it differently.
    """
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    parts = host.split(".")
    if not host or len(parts) > 4 or not all(_NUMBERISH.match(p) for p in parts):
        return None
    values = [_ipv4_part(p) for p in parts]
    if any(v is None for v in values):
        raise ValueError(f"{host!r} looks like an IP address but is not a valid one")
    numbers = [v for v in values if v is not None]
    *head, last = numbers
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} looks like an IP address but is out of range")
    value = 0
    for v in head:
        value = value * 256 + v
    value = value * 256 ** (5 - len(numbers)) + last
    return IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host spells literally (IPv4 in any spelling, IPv6 with or
    without brackets and zone), else ``None`` for a name that needs resolving."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        # A zone ("fe80::1%eth0", "%25eth0" in URLs) names an interface, not an address.
        return IPv6Address(host.split("%", 1)[0])
    return parse_ipv4_literal(host)


def _v4_reason(ip: IPv4Address) -> str | None:
    for net, reason in _V4_BLOCKS:
        if ip in net:
            return reason
    if ip == IPv4Address("255.255.255.255"):
        return "broadcast"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_v4(ip: IPv6Address) -> tuple[IPv4Address, str] | None:
    """The IPv4 address an IPv6 transition form carries, with the form's name."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return IPv4Address(int(ip)), "IPv4-compatible"
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from (loopback, private, …), or ``None`` if it is public."""
    if isinstance(ip, IPv4Address):
        return _v4_reason(ip)
    embedded = _embedded_v4(ip)
    if embedded is not None:
        inner, form = embedded
        reason = _v4_reason(inner)
        return f"{form} {reason}" if reason else None
    for net, reason in _V6_BLOCKS:
        if ip in net:
            return reason
    if ip.is_reserved:
        return "reserved"
    if ip.is_multicast:
        return "multicast"
    if not ip.is_global:
        return "not globally routable"
    return None


def is_public(ip: IPAddress) -> bool:
    return blocked_reason(ip) is None


def as_address(value: str) -> IPAddress:
    """An address string as returned by a resolver (no odd spellings) to an address."""
    return ipaddress.ip_address(value.split("%", 1)[0])
