"""VIPPool: the operator's pool definition, parsed and validated from its spec.

Parsing is strict and total: a spec either becomes a :class:`Pool` or a
:class:`PoolError` whose message is what the operator sees in the pool's
``InvalidAddresses``/``Invalid`` condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exalb.assignments import (
    Advertisement,
    DataPathCheck,
    Degraded,
    LabelSelector,
    SelectorError,
)
from exalb.assignments.addresses import AddressError, AddressRange, parse_addresses

from .addresses import usable_count
from .communities import CommunityError, split


class PoolError(ValueError):
    """A pool spec that cannot be used; ``reason`` is the condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, eq=False)  # identity: pools are looked up, not compared
class Pool:
    name: str
    ranges: tuple[AddressRange, ...]
    auto_assign: bool = True
    avoid_buggy_ips: bool = False
    priority: int = 0  # lower = tried first; 0 = unset = tried after every set priority
    namespaces: tuple[str, ...] = ()
    namespace_selectors: tuple[LabelSelector, ...] = ()
    service_selectors: tuple[LabelSelector, ...] = ()
    advertisements: tuple[Advertisement, ...] = field(default_factory=lambda: (Advertisement(),))
    created: str = ""  # creationTimestamp: the older pool wins an overlap

    @property
    def families(self) -> frozenset[int]:
        return frozenset(r.version for r in self.ranges)

    @property
    def has_service_allocation(self) -> bool:
        return bool(self.namespaces or self.namespace_selectors or self.service_selectors)

    def capacity(self, version: int) -> int:
        return sum(
            usable_count(r, self.avoid_buggy_ips) for r in self.ranges if r.version == version
        )

    def allows(
        self, namespace: str, ns_labels: Mapping[str, str], svc_labels: Mapping[str, str]
    ) -> bool:
        """MetalLB's rule: namespaces OR namespaceSelectors, AND any serviceSelector."""
        if self.namespaces or self.namespace_selectors:
            ns_ok = namespace in self.namespaces or any(
                s.matches(ns_labels) for s in self.namespace_selectors
            )
            if not ns_ok:
                return False
        return not self.service_selectors or any(
            s.matches(svc_labels) for s in self.service_selectors
        )


def parse_pool(name: str, spec: Any, created: str = "") -> Pool:
    if not isinstance(spec, Mapping):
        raise PoolError("Invalid", "spec must be an object")
    addrs = spec.get("addresses")
    if not isinstance(addrs, list) or not all(isinstance(a, str) for a in addrs):
        raise PoolError("InvalidAddresses", "spec.addresses must be a list of strings")
    try:
        ranges = parse_addresses(addrs)
    except AddressError as exc:
        raise PoolError("InvalidAddresses", str(exc)) from None
    alloc = spec.get("serviceAllocation") or {}
    if not isinstance(alloc, Mapping):
        raise PoolError("Invalid", "spec.serviceAllocation must be an object")
    namespaces = alloc.get("namespaces") or []
    if len(set(namespaces)) != len(namespaces):
        raise PoolError("Invalid", "spec.serviceAllocation.namespaces has duplicates")
    try:
        ns_sel = tuple(LabelSelector.parse(s) for s in alloc.get("namespaceSelectors") or [])
        svc_sel = tuple(LabelSelector.parse(s) for s in alloc.get("serviceSelectors") or [])
        advs = tuple(
            _advertisement(i, a, ranges)
            for i, a in enumerate(spec.get("bgpAdvertisements") or [{}])
        )
    except (SelectorError, CommunityError) as exc:
        raise PoolError("Invalid", str(exc)) from None
    priority = alloc.get("priority", 0)
    if not isinstance(priority, int) or priority < 0:
        raise PoolError("Invalid", "spec.serviceAllocation.priority must be a non-negative integer")
    return Pool(
        name=name,
        ranges=ranges,
        auto_assign=bool(spec.get("autoAssign", True)),
        avoid_buggy_ips=bool(spec.get("avoidBuggyIPs", False)),
        priority=priority,
        namespaces=tuple(sorted(namespaces)),
        namespace_selectors=ns_sel,
        service_selectors=svc_sel,
        advertisements=advs,
        created=created,
    )


def _advertisement(i: int, raw: Any, ranges: tuple[AddressRange, ...]) -> Advertisement:
    where = f"spec.bgpAdvertisements[{i}]"
    if not isinstance(raw, Mapping):
        raise PoolError("Invalid", f"{where} must be an object")
    agg4 = raw.get("aggregationLength", 32)
    agg6 = raw.get("aggregationLengthV6", 128)
    if not isinstance(agg4, int) or not 1 <= agg4 <= 32:
        raise PoolError("Invalid", f"{where}.aggregationLength must be 1..32")
    if not isinstance(agg6, int) or not 1 <= agg6 <= 128:
        raise PoolError("Invalid", f"{where}.aggregationLengthV6 must be 1..128")
    for r in ranges:
        shortest = _shortest_prefix(r)
        agg = agg4 if r.version == 4 else agg6
        if agg < shortest:
            raise PoolError(
                "Invalid",
                f"{where}: aggregation length {agg} is shorter than the pool's /{shortest} ({r}); "
                "it would announce addresses outside the pool",
            )
    std, large = split(list(raw.get("communities") or []))
    peers = raw.get("peers") or []
    if not all(isinstance(p, str) for p in peers):
        raise PoolError("Invalid", f"{where}.peers must be BGPPeer names")
    weighted = raw.get("weightedECMP")
    return Advertisement(
        aggregation_length=agg4,
        aggregation_length_v6=agg6,
        communities=std,
        large_communities=large,
        local_pref=_uint32(raw, "localPref", where),
        peers=tuple(sorted(peers)),
        node_selectors=tuple(LabelSelector.parse(s) for s in raw.get("nodeSelectors") or []),
        degraded=None if raw.get("degraded") is None else _degraded(raw["degraded"], where),
        mbps_per_endpoint=None if weighted is None else _weighted(weighted, where),
        data_path_check=_data_path_check(raw.get("dataPathCheck"), where),
    )


def _uint32(raw: Mapping[str, Any], name: str, where: str) -> int | None:
    value = raw.get(name)
    if value is not None and (not isinstance(value, int) or not 0 <= value <= 2**32 - 1):
        raise PoolError("Invalid", f"{where}.{name} must be 0..4294967295")
    return value


MAX_PREPEND = 10  # more only lengthens every router's AS path table; 3 already loses to any


def _degraded(raw: Any, where: str) -> Degraded:
    where = f"{where}.degraded"
    if not isinstance(raw, Mapping):
        raise PoolError("Invalid", f"{where} must be an object")
    prepend = raw.get("asPathPrepend", 0)
    if not isinstance(prepend, int) or not 0 <= prepend <= MAX_PREPEND:
        raise PoolError("Invalid", f"{where}.asPathPrepend must be 0..{MAX_PREPEND}")
    std, large = split(list(raw.get("communities") or []))
    out = Degraded(
        local_pref=_uint32(raw, "localPref", where),
        med=_uint32(raw, "med", where),
        as_path_prepend=prepend,
        communities=std,
        large_communities=large,
        node_selectors=tuple(LabelSelector.parse(s) for s in raw.get("nodeSelectors") or []),
    )
    if (out.local_pref, out.med, prepend, std, large) == (None, None, 0, (), ()):
        raise PoolError(
            "Invalid",
            f"{where} sets no attribute: a degraded route would look like a healthy one "
            "(set localPref, med, asPathPrepend or communities)",
        )
    return out


def _weighted(raw: Any, where: str) -> int:
    mbps = raw.get("mbpsPerEndpoint", 10) if isinstance(raw, Mapping) else None
    if not isinstance(mbps, int) or not 1 <= mbps <= 1_000_000:
        raise PoolError("Invalid", f"{where}.weightedECMP.mbpsPerEndpoint must be 1..1000000")
    return mbps


def _data_path_check(raw: Any, where: str) -> DataPathCheck | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise PoolError("Invalid", f"{where}.dataPathCheck must be an object ({{}} or {{port: N}})")
    port = raw.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
    ):
        raise PoolError("Invalid", f"{where}.dataPathCheck.port must be 1..65535, not {port!r}")
    return DataPathCheck(port=port)


def _shortest_prefix(r: AddressRange) -> int:
    """Prefix length of the largest CIDR block inside the range (MetalLB's rule)."""
    bits = 32 if r.version == 4 else 128
    best = bits
    start = r.start
    while start <= r.end:
        size = (start & -start).bit_length() - 1 if start else bits
        while size > 0 and start + (1 << size) - 1 > r.end:
            size -= 1
        best = min(best, bits - size)
        start += 1 << size
    return best
