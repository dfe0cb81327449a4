"""Prometheus metrics of the announcer (``exalb_announcer_*``), on a registry of its own.

A registry per instance keeps several announcers in one test process apart. Label
``peer`` is the BGPPeer name (not ``addr:port``: metallb#2806 shows what two
spellings of one peer do to alerts). There is no ``node`` label: one announcer runs
per node, so the scrape target (pod, and the node the ServiceMonitor adds) already
says which. Every name is listed in docs/metrics.md.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from announcer.core.session import Notification, SessionEvent, SessionRecord
from exalb.observability.metrics import register_process_metrics

SESSION_STATES = ("down", "connected", "up")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        register_process_metrics(r)
        self.data_path_checks = Counter(
            "exalb_announcer_data_path_checks_total",
            "TCP connects to Services' ClusterIPs (dataPathCheck), by result: "
            "passed, refused, timeout, error",
            ["result"],
            registry=r,
        )
        self.data_path_check_seconds = Histogram(
            "exalb_announcer_data_path_check_seconds",
            "how long one data path connect took, whatever its result",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.data_path_not_passing = Gauge(
            "exalb_announcer_data_path_not_passing",
            "Services with dataPathCheck on this node whose check does not pass now "
            "(unchecked, failing or recovering): their advertisements are not announced here",
            registry=r,
        )
        self.heartbeat_renewed = Gauge(
            "exalb_announcer_heartbeat_renewed_timestamp_seconds",
            "when this node's heartbeat Lease was last renewed (Unix time); exalbctl reports "
            "the announcer not running once the Lease is older than its duration",
            registry=r,
        )
        self.session_up = Gauge(
            "exalb_announcer_bgp_session_up",
            "1 when the BGP session is established",
            ["peer"],
            registry=r,
        )
        self.bfd_session_up = Gauge(
            "exalb_announcer_bfd_session_up",
            "1 while the BFD session with the peer is Up; absent for peers without BFD",
            ["peer"],
            registry=r,
        )
        self.announced = Gauge(
            "exalb_announcer_bgp_announced_prefixes",
            "prefixes ExaBGP has acknowledged for the peer",
            ["peer"],
            registry=r,
        )
        self.updates_sent = Counter(
            "exalb_announcer_bgp_updates_sent_total",
            "BGP UPDATE messages sent",
            ["peer"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "exalb_announcer_decision_to_ack_seconds",
            "from a recomputed decision to ExaBGP acknowledging the resulting command",
            ["peer"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.command_errors = Counter(
            "exalb_announcer_exabgp_command_errors_total",
            "commands ExaBGP answered with error",
            ["peer"],
            registry=r,
        )
        self.exabgp_restarts = Counter(
            "exalb_announcer_exabgp_restarts_total",
            "ExaBGP process restarts",
            ["peer"],
            registry=r,
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
        self.malformed_entries = Gauge(
            "exalb_announcer_malformed_assignment_entries",
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
            "exalb_announcer_reconcile_duration_seconds",
            "one pass: kind=full re-decides every Service (grows with their number), "
            "kind=changed only those whose inputs changed",
            ["kind"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.reconciles = Counter(
            "exalb_announcer_reconciles_total",
            "passes of the reconciler, by kind (full, changed)",
            ["kind"],
            registry=r,
        )
        self._session_metrics(r)

    def _session_metrics(self, r: CollectorRegistry) -> None:
        """What ExaBGP reports of each session; labels ``peer`` (BGPPeer name), never the node."""
        self.session_state = Gauge(
            "exalb_announcer_bgp_session_state",
            "1 for the state the session with the peer is in (down, connected: TCP up but "
            "not established, up: established), 0 for the others",
            ["peer", "state"],
            registry=r,
        )
        self.session_state_since = Gauge(
            "exalb_announcer_bgp_session_state_change_timestamp_seconds",
            "when the session last became established or stopped being established",
            ["peer"],
            registry=r,
        )
        self.negotiated_hold_time = Gauge(
            "exalb_announcer_bgp_negotiated_hold_time_seconds",
            "the hold time both OPENs agreed on; absent while the session is not established",
            ["peer"],
            registry=r,
        )
        self.notifications = Counter(
            "exalb_announcer_bgp_notifications_total",
            "NOTIFICATION messages, direction=received (from the router) or sent",
            ["peer", "direction", "code", "subcode"],
            registry=r,
        )
        self.last_notification = Gauge(
            "exalb_announcer_bgp_last_notification_info",
            "the last NOTIFICATION each way, with its RFC 8203 shutdown communication "
            "(one series per peer and direction; always 1)",
            ["peer", "direction", "code", "subcode", "name", "communication"],
            registry=r,
        )
        self.last_notification_time = Gauge(
            "exalb_announcer_bgp_last_notification_timestamp_seconds",
            "when the last NOTIFICATION was received or sent",
            ["peer", "direction"],
            registry=r,
        )
        self._shown: dict[tuple[str, str], tuple[str, ...]] = {}

    def forget_peer(self, peer: str) -> None:
        """Drop every series of a peer that no longer selects this node.

        A series left at 0 would page for a session nobody wants (the session-down
        alerts). ``peer_problem`` is the reports' to keep: it covers peers that still
        select this node but cannot be used.
        """
        session_metrics: list[Gauge | Counter | Histogram] = [
            self.session_up,
            self.bfd_session_up,
            self.announced,
            self.updates_sent,
            self.ack_latency,
            self.command_errors,
            self.exabgp_restarts,
            self.session_state,
            self.session_state_since,
            self.negotiated_hold_time,
            self.notifications,
            self.last_notification,
            self.last_notification_time,
        ]
        for metric in session_metrics:
            metric.remove_by_labels({"peer": peer})
        for key in [k for k in self._shown if k[0] == peer]:
            del self._shown[key]

    def record_session(self, peer: str, record: SessionRecord, event: SessionEvent) -> None:
        """Set the session metrics from ``record``, which ``event`` just changed."""
        for state in SESSION_STATES:
            self.session_state.labels(peer, state).set(1 if record.state == state else 0)
        self.session_state_since.labels(peer).set(record.since)
        if record.negotiated is not None:
            self.negotiated_hold_time.labels(peer).set(record.negotiated.hold_time)
        else:
            _forget(self.negotiated_hold_time, (peer,))
        if not isinstance(event, Notification):
            return
        self.notifications.labels(peer, event.direction, event.code, event.subcode).inc()
        seen = record.received if event.direction == "received" else record.sent
        assert seen is not None
        labels = (peer, event.direction, str(seen.code), str(seen.subcode), seen.name)
        shown = (*labels, seen.communication)
        old = self._shown.get((peer, event.direction))
        if old is not None and old != shown:
            _forget(self.last_notification, old)
        self.last_notification.labels(*shown).set(1)
        self._shown[(peer, event.direction)] = shown
        self.last_notification_time.labels(peer, event.direction).set(seen.at)


def _forget(gauge: Gauge, labels: tuple[str, ...]) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:
        pass
