"""Whether a prefix may be announced at all: it must lie inside the VIPPool its entry names.

The assignments ConfigMaps say what to announce, but anyone with write access
to them (or a bug) can put anything there; one entry with ``aggregationLength:
0`` once made every node announce 0.0.0.0/0. So the announcer reads the pools
itself and refuses any prefix they do not justify, whoever wrote the entry:

- never a default route (/0), whatever the pools say;
- the entry's pool exists now and its ``spec.addresses`` parse (the same parser
  as the allocator's, ``exalb.assignments.addresses``; the pool's status is the
  allocator's belief and is not consulted). An edit that makes a pool invalid
  keeps its last valid addresses in force, as the allocator keeps its Services
  on their IPs: a typo in a pool must not withdraw every Service of it;
- the IP lies inside that pool;
- every address of the announced prefix lies inside the pool, so the prefix is
  never shorter than the pool's own CIDR (for a range, than the largest CIDR
  block inside it that holds the IP).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exalb.assignments.addresses import AddressError, AddressRange, parse_addresses, parse_ip

DEFAULT_ROUTE = "defaultRoute"
POOL_NOT_FOUND = "poolNotFound"
POOL_INVALID = "poolInvalid"
INVALID_IP = "invalidIP"
INVALID_LENGTH = "invalidPrefixLength"
IP_OUTSIDE_POOL = "ipOutsidePool"
PREFIX_OUTSIDE_POOL = "prefixOutsidePool"
REASONS = (
    DEFAULT_ROUTE,
    POOL_NOT_FOUND,
    POOL_INVALID,
    INVALID_IP,
    INVALID_LENGTH,
    IP_OUTSIDE_POOL,
    PREFIX_OUTSIDE_POOL,
)


@dataclass(frozen=True)
class PoolSpace:
    """A VIPPool's addresses as contiguous integer ranges, or why they cannot be used."""

    ranges: tuple[AddressRange, ...] = ()  # sorted, adjacent entries merged
    problem: str | None = None


@dataclass(frozen=True)
class Refusal:
    """One prefix an entry asks for that the pools do not justify."""

    prefix: str  # "ip/length" as the entry asks for it
    reason: str  # one of REASONS
    message: str


def pool_space(spec: Any) -> PoolSpace:
    """A VIPPool's ``spec`` as the announcer needs it; never raises."""
    addrs = spec.get("addresses") if isinstance(spec, Mapping) else None
    if not isinstance(addrs, list) or not all(isinstance(a, str) for a in addrs):
        return PoolSpace(problem="spec.addresses must be a list of strings")
    try:
        ranges = parse_addresses(addrs)
    except AddressError as exc:
        return PoolSpace(problem=str(exc))
    return PoolSpace(_merged(ranges))


class PoolSpaces:
    """VIPPool name -> the addresses that justify its prefixes, across pool edits.

    Stateful on purpose: a pool whose spec turns invalid keeps its last valid
    addresses (a process that never saw them valid refuses the pool's prefixes).
    """

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[Any, PoolSpace]] = {}  # name -> (addresses, parsed)
        self._valid: dict[str, PoolSpace] = {}  # name -> its last valid space

    def update(self, specs: Mapping[str, Any]) -> tuple[dict[str, PoolSpace], dict[str, str]]:
        """Every pool's space now, and the pools whose current spec is invalid (and why)."""
        spaces: dict[str, PoolSpace] = {}
        invalid: dict[str, str] = {}
        for name, spec in specs.items():
            addrs = spec.get("addresses") if isinstance(spec, Mapping) else None
            hit = self._parsed.get(name)
            space = hit[1] if hit is not None and hit[0] == addrs else pool_space(spec)
            self._parsed[name] = (addrs, space)
            if space.problem is None:
                self._valid[name] = space
            else:
                invalid[name] = space.problem
            spaces[name] = self._valid.get(name, space)
        for gone in self._parsed.keys() - specs.keys():
            del self._parsed[gone]
            self._valid.pop(gone, None)
        return spaces, invalid


def _merged(ranges: tuple[AddressRange, ...]) -> tuple[AddressRange, ...]:
    """Adjacent ranges as one, so a block spanning two entries of the pool counts as inside."""
    out: list[AddressRange] = []
    for r in ranges:
        last = out[-1] if out else None
        if last is not None and last.version == r.version and last.end + 1 == r.start:
            out[-1] = AddressRange(last.start, r.end, r.version)
        else:
            out.append(r)
    return tuple(out)


def justify(
    ip: str, v4_length: int, v6_length: int, pool: str, pools: Mapping[str, PoolSpace]
) -> Refusal | None:
    """None when ``ip`` announced at its family's length is inside ``pool``, else why not."""
    return _justify(ip, v4_length, v6_length, pool, pools.get(pool))


@functools.lru_cache(maxsize=65536)
def _justify(
    ip: str, v4_length: int, v6_length: int, pool: str, space: PoolSpace | None
) -> Refusal | None:
    # Cached, and integer arithmetic: ipaddress objects made a 10,000-Service cold start's
    # first decision several times slower.
    try:
        value, version = parse_ip(ip)
    except AddressError:
        return Refusal(f"{ip}/{v4_length}", INVALID_IP, f"{ip!r} is not an IP address")
    length, bits = (v4_length, 32) if version == 4 else (v6_length, 128)
    prefix = f"{ip}/{length}"
    if length == 0:
        return Refusal(prefix, DEFAULT_ROUTE, f"{prefix} is a default route; never announced")
    if not 0 < length <= bits:
        return Refusal(prefix, INVALID_LENGTH, f"{prefix}: no such prefix length")
    if space is None:
        return Refusal(prefix, POOL_NOT_FOUND, f"{prefix}: VIPPool {pool!r} does not exist")
    if space.problem is not None:
        return Refusal(
            prefix, POOL_INVALID, f"{prefix}: VIPPool {pool!r} is invalid: {space.problem}"
        )
    home = next((r for r in space.ranges if r.version == version and value in r), None)
    if home is None:
        return Refusal(prefix, IP_OUTSIDE_POOL, f"{ip} is not in VIPPool {pool!r}")
    host_bits = (1 << (bits - length)) - 1
    first = value & ~host_bits
    if first < home.start or first + host_bits > home.end:
        net = ipaddress.ip_network((ip, length), strict=False)
        return Refusal(
            prefix,
            PREFIX_OUTSIDE_POOL,
            f"{net} reaches outside VIPPool {pool!r} ({home}): prefix too short",
        )
    return None
