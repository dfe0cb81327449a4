"""Plain data the decision is made from: this node, its peers, endpoints, and routes.

Everything here is built by adapters (``announcer.kube``) from API objects,
so the decision code never sees Kubernetes types and can be tested with
literals in microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
GRACEFUL_SHUTDOWN = "65535:0"  # RFC 8326 well-known community


def default_bgp_secrets_namespace(namespace: str) -> str:
    """Where BGP password Secrets live unless configured: beside exalb's own namespace.

    A namespace of their own is what lets RBAC give announcers those Secrets and no
    other (docs/bgppeer.md); the chart's ``bgpSecretsNamespace`` defaults to the same name.
    """
    return f"{namespace}-bgp-secrets"


@dataclass(frozen=True)
class Node:
    """The node this announcer runs on, as far as announcing is concerned."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    ready_since: float | None = None  # epoch seconds of the Ready condition's last transition
    network_unavailable: bool = False
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address), in status order
    unschedulable: bool = False  # cordoned
    taints: frozenset[str] = frozenset()  # taint keys


@dataclass(frozen=True)
class Endpoint:
    """One EndpointSlice endpoint, reduced to what the decision needs."""

    node: str | None
    ready: bool = True  # a nil Ready condition counts as ready (EndpointSlice semantics)
    serving: bool = True
    terminating: bool = False

    @property
    def usable(self) -> bool:
        """Ready, or still serving while terminating (so drains finish on this node)."""
        return self.ready or (self.serving and self.terminating)


@dataclass(frozen=True)
class Attrs:
    """Path attributes of one announced prefix; prefixes with equal Attrs are batched."""

    next_hop: str
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    local_pref: int | None = None
    med: int | None = None
    as_path: tuple[int, ...] = ()  # the whole AS_PATH when prepending (eBGP); () ExaBGP's own
    link_bandwidth: tuple[int, int] | None = None  # (2-byte AS, bytes per second)


Routes = dict[str, Attrs]  # prefix -> attributes


@dataclass(frozen=True)
class NodeCommunity:
    """The large community naming the announcing node on every route (issue #11).

    ``global_admin`` None is each session's own local ASN; the third field is the
    node's IPv4 address as a 32-bit number: unique in a cluster, and read back as
    an address with one line (docs/router-setup.md).
    """

    global_admin: int | None = None
    function: int = 1


@dataclass(frozen=True)
class Drain:
    """Move traffic off a node under maintenance while its sessions stay up (antrea#8355)."""

    on_cordon: bool = True
    taints: frozenset[str] = frozenset()  # taint keys that drain the node too
    seconds: float = 30.0  # how long routes carry GRACEFUL_SHUTDOWN before they are withdrawn

    def applies(self, node: Node) -> bool:
        return (self.on_cordon and node.unschedulable) or bool(self.taints & node.taints)


@dataclass(frozen=True)
class Options:
    """Per-announcer settings (flags), not per-cluster objects."""

    node_name: str
    ignore_exclude_lb: bool = False
    announce_delay: float = 0.0  # seconds after the node became Ready before announcing
    hold_new_addresses: float = 0.0  # seconds a just-assigned address waits (core.newaddresses)
    next_hop_v4: str | None = None  # override; default: the node's address of that family
    next_hop_v6: str | None = None
    address_types: tuple[str, ...] = ("InternalIP", "ExternalIP")
    source_address: str | None = None  # default session source when a peer names none
    router_id: str | None = None
    graceful_shutdown: bool = False  # add GRACEFUL_SHUTDOWN to every route (set on SIGTERM)
    node_community: NodeCommunity | None = None  # None: routes do not name the node
    drain: Drain | None = None  # None: cordons and taints do not drain the node's routes
    weight_hold: float = 0.0  # seconds: at most one link-bandwidth change per prefix in each
