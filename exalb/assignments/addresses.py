"""A pool's ``spec.addresses``: CIDRs and ``a-b`` ranges, parsed into integer ranges.

Shared by the allocator (which hands addresses out of them) and the announcers
(which announce only prefixes inside them), so both read a pool's addresses
the same way. Addresses are integers so a /16 or a large IPv6 range costs no
memory until an address is actually taken.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
from dataclasses import dataclass


class AddressError(ValueError):
    """An address entry that is not a CIDR or a valid ``start-end`` range."""


@dataclass(frozen=True, order=True)
class AddressRange:
    start: int
    end: int  # inclusive
    version: int  # 4 or 6

    def __contains__(self, ip: int) -> bool:
        return self.start <= ip <= self.end

    def overlaps(self, other: AddressRange) -> bool:
        return self.version == other.version and self.start <= other.end and other.start <= self.end

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def __str__(self) -> str:
        a, b = to_str(self.start, self.version), to_str(self.end, self.version)
        return a if a == b else f"{a}-{b}"


def to_str(ip: int, version: int) -> str:
    return str(ipaddress.IPv4Address(ip) if version == 4 else ipaddress.IPv6Address(ip))


@functools.lru_cache(maxsize=1 << 17)
def parse_ip(text: str) -> tuple[int, int]:
    """(integer, version) of an IP address; raises :class:`AddressError`.

    Cached: every plan re-reads every Service's IPs, and ``ipaddress`` is slow.
    """
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        raise AddressError(f"{text!r} is not an IP address") from None
    return int(ip), ip.version


def parse_entry(entry: str) -> AddressRange:
    """One ``spec.addresses`` entry: ``198.51.100.0/24`` or ``198.51.100.10-198.51.100.20``."""
    text = entry.strip()
    if "-" in text:
        a, _, b = text.partition("-")
        (start, v1), (end, v2) = parse_ip(a), parse_ip(b)
        if v1 != v2:
            raise AddressError(f"range {entry!r} mixes IPv4 and IPv6")
        if start > end:
            raise AddressError(f"range {entry!r} starts after it ends")
        return AddressRange(start, end, v1)
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise AddressError(f"{entry!r} is not a CIDR or range: {exc}") from None
    return AddressRange(int(net.network_address), int(net.broadcast_address), net.version)


def parse_addresses(entries: list[str]) -> tuple[AddressRange, ...]:
    """All entries, sorted; raises on a bad entry or entries that overlap each other."""
    if not entries:
        raise AddressError("spec.addresses is empty")
    ranges = sorted(parse_entry(e) for e in entries)
    for a, b in itertools.pairwise(ranges):
        if a.overlaps(b):
            raise AddressError(f"entries {a} and {b} overlap")
    return tuple(ranges)
