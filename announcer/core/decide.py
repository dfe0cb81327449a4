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

An advertisement with ``degraded`` set grades instead of withdrawing
(metallb#148, #312): a node its ``degraded.nodeSelectors`` select, and a node
whose only usable endpoints are terminating (serving, not ready), announce with
the degraded attributes, so routers use them only when no healthy node is left.
With ``mbpsPerEndpoint`` (weighted ECMP, metallb#1), a ``Local`` Service's route
carries a link-bandwidth extended community proportional to the node's ready
endpoints. A node drained by a cordon or taint (``Options.drain``) first adds
GRACEFUL_SHUTDOWN to every route, then withdraws them (``nodeDrained``).

An advertisement with ``dataPathCheck`` (issue 13) is announced only while this node's
latest connect to the Service's ClusterIP passed (``core.datapath``, checked after the
endpoints): the probe results are a per-Service input, like its endpoints.

An address the allocator assigned moments ago is held back (``core.newaddresses``,
``newAddressHeld``) until kube-proxy here has had time to program it; the Service's
other addresses go on.

Before any of that, every prefix an entry asks for must be justified by its
VIPPool (``core.pools``): one that is not is skipped and reported, the
entry's other prefixes go on.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from exalb.assignments import LOCAL, Advertisement, Assignment, Degraded, any_matches
from exalb.assignments.addresses import parse_ip, to_str
from exalb.bgppeer import Peer

from .datapath import CheckState, check_reason
from .model import (
    EXCLUDE_LABEL,
    GRACEFUL_SHUTDOWN,
    Attrs,
    Endpoint,
    Node,
    NodeCommunity,
    Options,
    Routes,
)
from .pools import PoolSpace, Refusal, justify

# Why a Service is not (fully) announced on this node, in the order they are checked. A
# prefix its pool does not justify is reported by its pools.REASONS code instead.
NODE_UNKNOWN = "nodeUnknown"
NODE_NOT_READY = "nodeNotReady"
NODE_READY_DELAY = "nodeReadyDelay"
NODE_NETWORK_UNAVAILABLE = "nodeNetworkUnavailable"
NODE_EXCLUDED = "nodeLabeledExcludeBalancers"
NODE_DRAINED = "nodeDrained"  # cordoned or tainted (Options.drain) past its GRACEFUL_SHUTDOWN time
NOT_OWNER = "notOwner"
NO_LOCAL_ENDPOINTS = "noLocalEndpoints"
NO_ENDPOINTS = "noEndpoints"
NEW_ADDRESS_HELD = "newAddressHeld"  # assigned moments ago: kube-proxy may not have it yet
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


def node_problem(
    node: Node | None, opts: Options, now: float, drain_started: float | None = None
) -> str | None:
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
    if draining(node, opts, drain_started) and now >= drain_ends(opts, drain_started):
        return NODE_DRAINED
    return None


def draining(node: Node | None, opts: Options, drain_started: float | None) -> bool:
    """A cordon or configured taint drains the node, since ``drain_started``."""
    return (
        node is not None
        and opts.drain is not None
        and drain_started is not None
        and opts.drain.applies(node)
    )


def drain_ends(opts: Options, drain_started: float | None) -> float:
    """When a drained node's routes lose GRACEFUL_SHUTDOWN and are withdrawn."""
    if opts.drain is None or drain_started is None:
        return float("inf")
    return drain_started + opts.drain.seconds


def ready_at(node: Node | None, opts: Options) -> float | None:
    """When the announce delay ends, if it has not yet: the caller re-decides then."""
    if node is None or not node.ready or opts.announce_delay <= 0 or node.ready_since is None:
        return None
    return node.ready_since + opts.announce_delay


def wake_at(
    node: Node | None, opts: Options, now: float, drain_started: float | None
) -> float | None:
    """The next moment a decision changes with no event: the announce delay or a drain ends."""
    times = [t for t in (ready_at(node, opts), drain_ends(opts, drain_started)) if t is not None]
    later = [t for t in times if now < t < float("inf")]
    return min(later) if later else None


@dataclass(frozen=True)
class Serving:
    """What a Service's endpoints say for this node's announcement."""

    reason: str | None  # why it must not announce (no usable endpoint), or None
    ready: int = 0  # ready endpoints that count: this node's for Local, all for Cluster
    terminating_only: bool = False  # usable only because terminating endpoints still serve


def serving(a: Assignment, endpoints: Sequence[Endpoint] | None, node_name: str) -> Serving:
    local = a.traffic_policy == LOCAL
    counted = [e for e in endpoints or () if not local or e.node == node_name]
    ready = sum(1 for e in counted if e.ready)
    if ready:
        return Serving(None, ready)
    if any(e.usable for e in counted):
        return Serving(None, 0, terminating_only=True)
    return Serving(NO_LOCAL_ENDPOINTS if local else NO_ENDPOINTS)


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
    # By version, not ip_network(): an integer below 2**32 ("::", "::1") would be IPv4.
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return str(network((value, length), strict=False)), version


@functools.lru_cache(maxsize=4096)
def _attrs(  # one argument per path attribute, all hashable for the cache
    nh: str,
    communities: tuple[str, ...],
    large: tuple[str, ...],
    local_pref: int | None,
    med: int | None,
    as_path: tuple[int, ...],
    link_bandwidth: tuple[int, int] | None,
    graceful_shutdown: bool,
) -> Attrs:
    """Equal attributes are one object across recomputes, so comparing 10,000 routes with
    what was sent is mostly identity checks."""
    comms = set(communities)
    if graceful_shutdown:
        comms.add(GRACEFUL_SHUTDOWN)
    return Attrs(
        nh,
        tuple(sorted(comms)),
        tuple(sorted(set(large))),
        local_pref,
        med,
        as_path,
        link_bandwidth,
    )


AS_TRANS = 23456  # RFC 6793: the 2-byte stand-in for a 4-byte ASN
BYTES_PER_MBPS = 125_000
MAX_BANDWIDTH = 2**32 - 1  # ExaBGP's limit on the community's value, in bytes per second


def path_attrs(
    ctx: Context,
    adv: Advertisement,
    peer: Peer,
    nh: str,
    grade: Degraded | None,
    weight: int | None,
) -> Attrs:
    """One advertisement's attributes towards one peer; ``grade`` set: the degraded ones.

    Local-pref reaches iBGP peers only and AS-path prepending eBGP peers only (an
    iBGP router would drop a path holding its own ASN as a loop). ``weight`` is the
    endpoint count the link bandwidth is proportional to, None without weighting.
    """
    communities, large = adv.communities, adv.large_communities
    local_pref, med = adv.local_pref, adv.med
    as_path: tuple[int, ...] = ()
    if grade is not None:
        communities += grade.communities
        large += grade.large_communities
        local_pref = local_pref if grade.local_pref is None else grade.local_pref
        med = med if grade.med is None else grade.med
        # ExaBGP sends an explicit AS_PATH as written: the session's own ASN, then the copies.
        as_path = (peer.my_asn,) * (grade.as_path_prepend + 1) if grade.as_path_prepend else ()
    node_tag = node_community(ctx, peer)
    if node_tag is not None:
        large += (node_tag,)
    bandwidth = None
    if weight is not None and adv.mbps_per_endpoint is not None:
        asn = peer.my_asn if peer.my_asn <= 65535 else AS_TRANS
        bandwidth = (asn, min(weight * adv.mbps_per_endpoint * BYTES_PER_MBPS, MAX_BANDWIDTH))
    return _attrs(
        nh,
        communities,
        large,
        local_pref if peer.ibgp else None,
        med,
        () if peer.ibgp else as_path,
        bandwidth,
        ctx.graceful_shutdown,
    )


def node_community(ctx: Context, peer: Peer) -> str | None:
    """The large community naming this node, or None (turned off, or no IPv4 address)."""
    if ctx.node_community is None or ctx.node_id is None:
        return None
    admin = ctx.node_community.global_admin
    return f"{peer.my_asn if admin is None else admin}:{ctx.node_community.function}:{ctx.node_id}"


def node_id(node: Node | None, opts: Options) -> int | None:
    """The node's first IPv4 address (by ``opts.address_types``) as a 32-bit number."""
    if node is None:
        return None
    for wanted in opts.address_types:
        for kind, addr in node.addresses:
            if kind == wanted and _family(addr) == 4:
                try:
                    return int(ipaddress.IPv4Address(addr))
                except ValueError:
                    continue
    return None


@functools.lru_cache(maxsize=1024)
def _family(address: str) -> int:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return 4


def _merge(old: Attrs | None, new: Attrs) -> Attrs:
    """Two advertisements (or Services sharing an aggregate) for one prefix: union them.

    Communities are unioned and the best of each preference wins (the highest
    local-pref, the lowest MED, the shortest AS path, the most bandwidth), so
    the result does not depend on the order Services are listed in.
    """
    if old is None:
        return new
    lp = [x for x in (old.local_pref, new.local_pref) if x is not None]
    med = [x for x in (old.med, new.med) if x is not None]
    bw = [x for x in (old.link_bandwidth, new.link_bandwidth) if x is not None]
    return Attrs(
        next_hop=old.next_hop,
        communities=tuple(sorted(set(old.communities) | set(new.communities))),
        large_communities=tuple(sorted(set(old.large_communities) | set(new.large_communities))),
        local_pref=max(lp) if lp else None,
        med=min(med) if med else None,
        as_path=min(old.as_path, new.as_path, key=lambda p: (len(p), p)),
        link_bandwidth=max(bw, key=lambda b: (b[1], b[0])) if bw else None,
    )


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
    node_community: NodeCommunity | None = None
    node_id: int | None = None  # the node's IPv4 address as a number, for node_community

    @property
    def peer_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.peers)


def context(
    node: Node | None,
    peers: Iterable[Peer],
    opts: Options,
    now: float,
    pools: Mapping[str, PoolSpace],
    drain_started: float | None = None,
) -> Context:
    """``drain_started``: since when the node has been cordoned or tainted (``DrainClock``)."""
    return Context(
        node_name=opts.node_name,
        node_reason=node_problem(node, opts, now, drain_started),
        labels=dict(node.labels) if node else {},
        peers=tuple(peers_of_node(peers, node)),
        hops={v: next_hop(node, v, opts) for v in (4, 6)} if node else {4: None, 6: None},
        graceful_shutdown=opts.graceful_shutdown or draining(node, opts, drain_started),
        pools=dict(pools),
        node_community=opts.node_community,
        node_id=node_id(node, opts),
    )


@dataclass(frozen=True)
class ServiceDecision:
    """One Service: why it is not announced (or None), and its routes per peer name."""

    reason: str | None
    routes: Mapping[str, Mapping[str, Attrs]] = field(default_factory=dict)
    refused: tuple[Refusal, ...] = ()  # prefixes the entry asks for that its pool does not justify


def decide_service(
    ctx: Context,
    a: Assignment,
    endpoints: Sequence[Endpoint] | None,
    check: CheckState | None = None,
    held: frozenset[str] = frozenset(),
) -> ServiceDecision:
    """The routes ``a`` contributes on this node; ``endpoints`` are its Service's,
    ``check`` its data path probes here (``core.datapath``), ``held`` its addresses
    assigned too recently to announce (``core.newaddresses``).

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
    endpoints_state = serving(a, endpoints, ctx.node_name)
    reason = (NOT_OWNER if not advs else None) or ctx.node_reason or endpoints_state.reason
    checked = None
    if reason is None and any(adv.data_path_check for adv in advs):
        checked = check_reason(a.data_path, check)
        if checked is not None:
            advs = [adv for adv in advs if adv.data_path_check is None]
            reason = None if advs else checked
    if reason is None and not ctx.peers:
        reason = NO_PEERS
    if reason is None and held and held.issuperset(a.ips):
        reason = NEW_ADDRESS_HELD
    if reason is not None:
        return ServiceDecision(reason, refused=refused)
    routes: dict[str, dict[str, Attrs]] = {}
    problem = refused[0].reason if refused else checked or (NEW_ADDRESS_HELD if held else None)
    # Weights follow this node's own ready endpoints, so only Local Services have them; a
    # node that still serves from terminating endpoints keeps the smallest share.
    weight = max(1, endpoints_state.ready) if local else None
    for adv in advs:
        grade = degraded_grade(adv, ctx, endpoints_state)
        for ip in (ip for ip in a.ips if ip not in held):
            v4_len, v6_len = lengths(adv, local)
            if justify(ip, v4_len, v6_len, a.pool, ctx.pools) is not None:
                continue
            prefix, version = _prefix(ip, v4_len, v6_len)
            nh = ctx.hops.get(version)
            if nh is None:
                problem = NO_NEXT_HOP.format(version=version)
                continue
            for p in ctx.peers:
                if (adv.peers and p.name not in adv.peers) or version not in p.families:
                    continue
                attrs = path_attrs(ctx, adv, p, nh, grade, weight)
                mine = routes.setdefault(p.name, {})
                old = mine.get(prefix)
                mine[prefix] = attrs if old is None else _merge(old, attrs)
    if not routes:
        return ServiceDecision(problem or NO_MATCHING_PEER, refused=refused)
    # Announced, but one of its prefixes could not be (refused, no IPv6 next hop): say so.
    return ServiceDecision(problem, routes, refused)


def degraded_grade(adv: Advertisement, ctx: Context, state: Serving) -> Degraded | None:
    """The degraded attributes when this node should be only a backup for ``adv``, else None."""
    grade = adv.degraded
    if grade is None:
        return None
    standby = bool(grade.node_selectors) and any_matches(grade.node_selectors, ctx.labels)
    return grade if standby or state.terminating_only else None


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
    checks: Mapping[str, CheckState] | None = None,
) -> Decision:
    """The full desired state; ``endpoints`` is keyed ``namespace/name``, ``checks`` by
    assignment key."""
    ctx = context(node, peers, opts, now, pools)
    out = Decision(routes={name: {} for name in ctx.peer_names})
    for a in assignments:  # order-independent: _merge() is commutative
        d = decide_service(ctx, a, endpoints.get(service_id(a)), (checks or {}).get(a.key))
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
