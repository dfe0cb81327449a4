"""The assignment record: what the allocator decided for one Service, and how to announce it.

This is the contract between the allocator (the only writer) and every
announcer (readers). It is versioned by :data:`SCHEMA_VERSION`; a reader that
meets a newer version keeps its last good state instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .selectors import LabelSelector

SCHEMA_VERSION = 2

CLUSTER = "Cluster"
LOCAL = "Local"


@dataclass(frozen=True)
class Degraded:
    """The worse attributes a node announces with when it should not draw traffic but can serve.

    Graded announcements (metallb#148, #312): instead of withdrawing, such a node stays
    a backup that routers use only when no node with the normal attributes is left.
    """

    local_pref: int | None = None  # iBGP sessions only
    med: int | None = None
    as_path_prepend: int = 0  # extra copies of the local ASN; eBGP sessions only
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    node_selectors: tuple[LabelSelector, ...] = ()  # standby nodes: always degraded


@dataclass(frozen=True)
class DataPathCheck:
    """Announce a Service only once this node's data path answers (issue 13, metallb#496).

    ``port`` None: the Service's first TCP port. The allocator resolves it per Service
    into the entry's :class:`DataPathTarget`.
    """

    port: int | None = None


@dataclass(frozen=True)
class DataPathTarget:
    """Where each announcer connects to check its node can deliver the Service.

    The Service's ClusterIP, not its load-balancer IP: node-originated traffic to either
    is DNATed by the node's own kube-proxy rules, but a connect to the load-balancer IP
    that finds no rule here leaves by the default route and can come back through another
    node that already announces it (docs/traffic-steering.md). ``problem`` says why there
    is no target (no ClusterIP, no TCP port, a named port the Service lacks); a node
    then never announces the advertisements that ask for the check.
    """

    address: str = ""
    port: int = 0
    problem: str = ""

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Advertisement:
    """How a Service IP is announced: MetalLB's BGPAdvertisement fields, resolved per Service."""

    aggregation_length: int = 32
    aggregation_length_v6: int = 128
    communities: tuple[str, ...] = ()  # "65000:100"
    large_communities: tuple[str, ...] = ()  # "64512:1:2"
    local_pref: int | None = None  # sent on iBGP sessions only
    med: int | None = None  # MULTI_EXIT_DISC
    peers: tuple[str, ...] = ()  # BGPPeer names; empty = every peer of the node
    node_selectors: tuple[LabelSelector, ...] = ()  # empty = every node
    degraded: Degraded | None = None  # None: withdraw instead (the all-or-nothing default)
    # Weighted ECMP: the link-bandwidth extended community, per ready local endpoint (Local).
    mbps_per_endpoint: int | None = None
    data_path_check: DataPathCheck | None = None  # None: announce without checking


@dataclass(frozen=True)
class Assignment:
    """One Service's allocation as published to the announcers."""

    namespace: str
    name: str
    uid: str
    ips: tuple[str, ...]
    pool: str
    traffic_policy: str = CLUSTER  # externalTrafficPolicy: Cluster | Local
    advertisements: tuple[Advertisement, ...] = field(default_factory=lambda: (Advertisement(),))
    data_path: DataPathTarget | None = None  # set when an advertisement has data_path_check

    @property
    def key(self) -> str:
        """ConfigMap data key: namespace and Service names are DNS labels, so '.' is unambiguous."""
        return entry_key(self.namespace, self.name)


def entry_key(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"
