"""Whether this node announces each Service IP, to which peers, with which attributes.

The rules are MetalLB's (speaker/bgp_controller.go ShouldAnnounce), checked in
its order so the first failing one is the reason we report:

1. an advertisement of the assignment selects this node (nodeSelectors);
2. the node is Ready (plus the optional announce delay) and its
   ``NetworkUnavailable`` condition is not True;
3. the node is not labelled exclude-from-external-load-balancers (unless
   ignored by flag);
4. ``Local``: an endpoint on this node is usable; ``Cluster``: any is.

A usable endpoint is Ready, or Serving while terminating; Ready already
reflects ``publishNotReadyAddresses`` because the EndpointSlice controller
sets it. ``Local`` always announces host routes (/32, /128) whatever the
advertisement's aggregation length: an aggregate would draw traffic to nodes
without endpoints (metallb#2811).

Before any of that, every prefix an entry asks for must be justified by its
VIPPool (``core.pools``): one that is not is skipped and reported, the
entry's other prefixes go on.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from exalb.assignments import LOCAL, Advertisement, Assignment, any_matches
from exalb.assignments.addresses import parse_ip, to_str
from exalb.bgppeer import Peer

from .model import EXCLUDE_LABEL, GRACEFUL_SHUTDOWN, Attrs, Endpoint, Node, Options, Routes
from .pools import PoolSpace, Refusal, justify

# Why a Service is not (fully) announced on this node, in the order they are checked. A
# prefix its pool does not justify is reported by its pools.REASONS code instead.
NODE_UNKNOWN = "nodeUnknown"
NODE_NOT_READY = "nodeNotReady"
NODE_READY_DELAY = "nodeReadyDelay"
NODE_NETWORK_UNAVAILABLE = "nodeNetworkUnavailable"
NODE_EXCLUDED = "nodeLabeledExcludeBalancers"
NOT_OWNER = "notOwner"
NO_LOCAL_ENDPOINTS = "noLocalEndpoints"
NO_ENDPOINTS = "noEndpoints"
NO_PEERS = "noPeers"
NO_MATCHING_PEER = "noMatchingPeer"
NO_NEXT_HOP = "noIPv{version}NextHop"  # formatted with the IP version


@dataclass
class Decision:
    """Desired routes per peer name, and why each Service is or is not announced."""

    routes: dict[str, Routes] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # service key -> withdraw reason
    announced: set[str] = field(default_factory=set)  # service keys announced to some peer
    refused: dict[str, tuple[Refusal, ...]] = field(default_factory=dict)  # service key -> why


def node_problem(node: Node | None, opts: Options, now: float) -> str | None:
    """Why this node must not announce anything, or None when it may."""
    if node is None:
        return NODE_UNKNOWN
    if not node.ready:
        return NODE_NOT_READY
    if (
        opts.announce_delay > 0
        and node.ready_since is not None
        and now - node.ready_since < opts.announce_delay
    ):
        return NODE_READY_DELAY
    if node.network_unavailable:
        return NODE_NETWORK_UNAVAILABLE
    if not opts.ignore_exclude_lb and EXCLUDE_LABEL in node.labels:
        return NODE_EXCLUDED
    return None


def ready_at(node: Node | None, opts: Options) -> float | None:
    """When the announce delay ends, if it has not yet: the caller re-decides then."""
    if node is None or not node.ready or opts.announce_delay <= 0 or node.ready_since is None:
        return None
    return node.ready_since + opts.announce_delay


def endpoints_problem(
    a: Assignment, endpoints: Sequence[Endpoint] | None, node_name: str
) -> str | None:
    usable = [e for e in endpoints or () if e.usable]
    if a.traffic_policy == LOCAL:
        return None if any(e.node == node_name for e in usable) else NO_LOCAL_ENDPOINTS
    return None if usable else NO_ENDPOINTS


def peers_of_node(peers: Iterable[Peer], node: Node | None) -> list[Peer]:
    """Peers whose nodeSelectors select this node (a session runs only on those)."""
    labels: Mapping[str, str] = node.labels if node else {}
    return sorted(
        (p for p in peers if p.problem is None and any_matches(p.node_selectors, labels)),
        key=lambda p: p.name,
    )


def unusable_peers(peers: Iterable[Peer], node: Node | None) -> dict[str, str]:
    """Peers selecting this node that it cannot run a session with, and why.

    Reported in the node's BGPSessionStatus: the allocator turns these reports into
    the BGPPeer's condition Usable (only the announcer reads the password Secrets).
    """
    labels: Mapping[str, str] = node.labels if node else {}
    return {
        p.name: p.problem
        for p in sorted(peers, key=lambda p: p.name)
        if p.problem is not None and any_matches(p.node_selectors, labels)
    }


def next_hop(node: Node, version: int, opts: Options) -> str | None:
    override = opts.next_hop_v4 if version == 4 else opts.next_hop_v6
    if override:
        return override
    for wanted in opts.address_types:
        for kind, addr in node.addresses:
            if kind != wanted:
                continue
            try:
                if ipaddress.ip_address(addr).version == version:
                    return addr
            except ValueError:
                continue
    return None


def lengths(adv: Advertisement, local: bool) -> tuple[int, int]:
    """The announced IPv4 and IPv6 prefix lengths; host routes for Local."""
    return (32, 128) if local else (adv.aggregation_length, adv.aggregation_length_v6)


@functools.lru_cache(maxsize=65536)
def _prefix(ip: str, v4_len: int, v6_len: int) -> tuple[str, int]:
    # Cached: parsing 10,000 addresses on every recompute was half of its cost. The
    # parse is parse_ip's, already cached by justify(); host routes skip ip_network(),
    # which is most of the parsing cost on a cold start. A valid IPv4 text is already
    # in normal form (ipaddress rejects leading zeros); IPv6 is normalised.
    value, version = parse_ip(ip)
    length = v4_len if version == 4 else v6_len
    if version == 4 and length == 32:
        return f"{ip.strip()}/32", 4
    if version == 6 and length == 128:
        return f"{to_str(value, 6)}/128", 6
    return str(ipaddress.ip_network((value, length), strict=False)), version


@functools.lru_cache(maxsize=4096)
def _attrs(
    nh: str,
    communities: tuple[str, ...],
    large: tuple[str, ...],
    local_pref: int | None,
    graceful_shutdown: bool,
) -> Attrs:
    """Equal attributes are one object across recomputes, so comparing 10,000 routes with
    what was sent is mostly identity checks."""
    comms = set(communities)
    if graceful_shutdown:
        comms.add(GRACEFUL_SHUTDOWN)
    return Attrs(nh, tuple(sorted(comms)), tuple(sorted(large)), local_pref)


def _merge(old: Attrs | None, new: Attrs) -> Attrs:
    """Two advertisements (or Services sharing an aggregate) for one prefix: union them.

    Communities are unioned and the highest local-pref wins, so the result does
    not depend on the order Services are listed in.
    """
    if old is None:
        return new
    lp = [x for x in (old.local_pref, new.local_pref) if x is not None]
    return Attrs(
        next_hop=old.next_hop,
        communities=tuple(sorted(set(old.communities) | set(new.communities))),
        large_communities=tuple(sorted(set(old.large_communities) | set(new.large_communities))),
        local_pref=max(lp) if lp else None,
    )


@functools.lru_cache(maxsize=1024)
def _family(address: str) -> int:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return 4


@dataclass(frozen=True)
class Context:
    """Everything a Service's decision depends on besides the Service itself.

    When it changes (node conditions or labels, peers, flags, the end of the
    announce delay) every Service is decided again; otherwise only the Services
    whose assignment or endpoints changed are.
    """

    node_name: str
    node_reason: str | None
    labels: Mapping[str, str]
    peers: tuple[Peer, ...]  # the peers selecting this node, by name
    hops: Mapping[int, str | None]  # IP version -> next hop
    graceful_shutdown: bool
    pools: Mapping[str, PoolSpace]  # VIPPool name -> its addresses

    @property
    def peer_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.peers)


def context(
    node: Node | None,
    peers: Iterable[Peer],
    opts: Options,
    now: float,
    pools: Mapping[str, PoolSpace],
) -> Context:
    return Context(
        node_name=opts.node_name,
        node_reason=node_problem(node, opts, now),
        labels=dict(node.labels) if node else {},
        peers=tuple(peers_of_node(peers, node)),
        hops={v: next_hop(node, v, opts) for v in (4, 6)} if node else {4: None, 6: None},
        graceful_shutdown=opts.graceful_shutdown,
        pools=dict(pools),
    )


@dataclass(frozen=True)
class ServiceDecision:
    """One Service: why it is not announced (or None), and its routes per peer name."""

    reason: str | None
    routes: Mapping[str, Mapping[str, Attrs]] = field(default_factory=dict)
    refused: tuple[Refusal, ...] = ()  # prefixes the entry asks for that its pool does not justify


def decide_service(
    ctx: Context, a: Assignment, endpoints: Sequence[Endpoint] | None
) -> ServiceDecision:
    """The routes ``a`` contributes on this node; ``endpoints`` are its Service's.

    Refusals are found for every advertisement, not only those selecting this
    node, so every announcer reports a bad entry the same way.
    """
    local = a.traffic_policy == LOCAL
    refused = tuple(
        dict.fromkeys(
            r
            for adv in a.advertisements
            for ip in a.ips
            if (r := justify(ip, *lengths(adv, local), a.pool, ctx.pools)) is not None
        )
    )
    advs = [adv for adv in a.advertisements if any_matches(adv.node_selectors, ctx.labels)]
    reason = (
        (NOT_OWNER if not advs else None)
        or ctx.node_reason
        or endpoints_problem(a, endpoints, ctx.node_name)
    )
    if reason is None and not ctx.peers:
        reason = NO_PEERS
    if reason is not None:
        return ServiceDecision(reason, refused=refused)
    routes: dict[str, dict[str, Attrs]] = {}
    problem = refused[0].reason if refused else None
    for adv in advs:
        for ip in a.ips:
            v4_len, v6_len = lengths(adv, local)
            if justify(ip, v4_len, v6_len, a.pool, ctx.pools) is not None:
                continue
            prefix, version = _prefix(ip, v4_len, v6_len)
            nh = ctx.hops.get(version)
            if nh is None:
                problem = NO_NEXT_HOP.format(version=version)
                continue
            for p in ctx.peers:
                if (adv.peers and p.name not in adv.peers) or _family(p.address) != version:
                    continue
                lp = adv.local_pref if p.ibgp else None
                attrs = _attrs(
                    nh, adv.communities, adv.large_communities, lp, ctx.graceful_shutdown
                )
                mine = routes.setdefault(p.name, {})
                old = mine.get(prefix)
                mine[prefix] = attrs if old is None else _merge(old, attrs)
    if not routes:
        return ServiceDecision(problem or NO_MATCHING_PEER, refused=refused)
    # Announced, but one of its prefixes could not be (refused, no IPv6 next hop): say so.
    return ServiceDecision(problem, routes, refused)


def merge_all(contributions: Iterable[Attrs]) -> Attrs:
    """Several Services (or advertisements) announce one prefix: the union of their attributes."""
    out: Attrs | None = None
    for attrs in contributions:
        out = attrs if out is None else _merge(out, attrs)
    if out is None:
        raise ValueError("no contributions")
    return out


def decide(
    node: Node | None,
    peers: Iterable[Peer],
    assignments: Iterable[Assignment],
    endpoints: Mapping[str, Sequence[Endpoint]],
    opts: Options,
    now: float,
    pools: Mapping[str, PoolSpace],
) -> Decision:
    """The full desired state; ``endpoints`` is keyed ``namespace/name``."""
    ctx = context(node, peers, opts, now, pools)
    out = Decision(routes={name: {} for name in ctx.peer_names})
    for a in assignments:  # order-independent: _merge() is commutative
        d = decide_service(ctx, a, endpoints.get(service_id(a)))
        if d.reason is not None:
            out.reasons[a.key] = d.reason
        if d.routes:
            out.announced.add(a.key)
        if d.refused:
            out.refused[a.key] = d.refused
        for peer, routes in d.routes.items():
            mine = out.routes[peer]
            for prefix, attrs in routes.items():
                old = mine.get(prefix)
                mine[prefix] = attrs if old is None else _merge(old, attrs)
    return out


def service_id(a: Assignment) -> str:
    """The ``namespace/name`` its EndpointSlices name it by."""
    return f"{a.namespace}/{a.name}"
