"""Prometheus metrics of the announcer, on a registry of its own (no global state in tests).

Label ``peer`` is the BGPPeer name (not ``addr:port``: metallb#2806 shows what
two spellings of one peer do to alerts), ``node`` is this node.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.session_up = Gauge(
            "exalb_bgp_session_up",
            "1 when the BGP session is established",
            ["peer", "node"],
            registry=r,
        )
        self.bfd_session_up = Gauge(
            "exalb_announcer_bfd_session_up",
            "1 while the BFD session with the peer is Up; absent for peers without BFD",
            ["peer"],
            registry=r,
        )
        self.announced = Gauge(
            "exalb_bgp_announced_prefixes",
            "prefixes ExaBGP has acknowledged for the peer",
            ["peer", "node"],
            registry=r,
        )
        self.updates_sent = Counter(
            "exalb_bgp_updates_sent", "BGP UPDATE messages sent", ["peer", "node"], registry=r
        )
        self.ack_latency = Histogram(
            "exalb_announcer_decision_to_ack_seconds",
            "from a recomputed decision to ExaBGP acknowledging the resulting command",
            ["peer"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.command_errors = Counter(
            "exalb_announcer_exabgp_command_errors",
            "commands ExaBGP answered with error",
            ["peer"],
            registry=r,
        )
        self.exabgp_restarts = Counter(
            "exalb_announcer_exabgp_restarts", "ExaBGP process restarts", ["peer"], registry=r
        )
        self.assignments_stale = Gauge(
            "exalb_announcer_assignments_stale",
            "1 while an assignment ConfigMap is unreadable (malformed, a newer schema) or "
            "deleted, and its last good entries are kept",
            registry=r,
        )
        self.unjustified = Gauge(
            "exalb_announcer_unjustified_prefixes",
            "prefixes the assignments ask for that the VIPPools do not justify (default route, "
            "IP or prefix outside its pool, pool missing or invalid): refused, never announced",
            ["reason"],
            registry=r,
        )
        self.assignment_errors = Gauge(
            "exalb_announcer_assignment_entry_errors",
            "assignment entries skipped because they are malformed",
            registry=r,
        )
        self.services_announced = Gauge(
            "exalb_announcer_services_announced", "Services this node announces", registry=r
        )
        self.peer_problem = Gauge(
            "exalb_announcer_peer_problem",
            "1 when a BGPPeer selecting this node cannot be used (bad spec, missing Secret)",
            ["peer"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "exalb_announcer_reconcile_seconds",
            "one pass: kind=full re-decides every Service (grows with their number), "
            "kind=changed only those whose inputs changed",
            ["kind"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.reconciles = Counter(
            "exalb_announcer_reconciles",
            "passes of the reconciler, by kind (full, changed)",
            ["kind"],
            registry=r,
        )
