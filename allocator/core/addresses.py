"""Counting a pool's usable addresses (parsing them is shared: ``exalb.assignments.addresses``)."""

from __future__ import annotations

from exalb.assignments.addresses import AddressRange


def buggy(ip: int, version: int) -> bool:
    """IPv4 .0 and .255 addresses, which some old firmware drops (MetalLB's avoidBuggyIPs)."""
    return version == 4 and (ip & 0xFF) in (0, 255)


def usable_count(r: AddressRange, avoid_buggy: bool) -> int:
    if not avoid_buggy or r.version != 4:
        return r.size

    # count addresses whose last octet is 0 or 255 inside [start, end]
    def upto(n: int) -> int:  # buggy addresses in [0, n]
        if n < 0:
            return 0
        full, rem = divmod(n + 1, 256)
        return full * 2 + (1 if rem > 0 else 0)  # a partial block holds its .0, never its .255

    return r.size - (upto(r.end) - upto(r.start - 1))
