"""``exalb-announcer``: flags and wiring; all decisions live in ``announcer.core``."""

from __future__ import annotations

import argparse
import faulthandler
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from announcer.bfd.speaker import BfdSpeaker
from announcer.core.model import Drain, NodeCommunity, Options, default_bgp_secrets_namespace
from announcer.core.shutdown import ShutdownTimes
from announcer.datapath import Prober
from announcer.kube.heartbeat import HeartbeatWriter
from announcer.kube.sources import Sources
from announcer.kube.status import StatusWriter
from announcer.metrics import Metrics
from announcer.reconciler import Reconciler
from exalb.kube import rest
from exalb.kube.events import EventRecorder
from exalb.kube.owner import service_account_owner
from exalb.observability import logging as obslog
from exalb.observability.http import HealthServer
from exalb.signals import StopSignals

log = structlog.get_logger("announcer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="exalb-announcer", description=__doc__)
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME"), help="default: $NODE_NAME")
    p.add_argument("--namespace", default=os.environ.get("EXALB_NAMESPACE", "exalb-system"))
    p.add_argument(
        "--bgp-secrets-namespace",
        default=os.environ.get("EXALB_BGP_SECRETS_NAMESPACE"),
        help="where the BGPPeers' password Secrets are (default: <namespace>-bgp-secrets)",
    )
    p.add_argument("--kubeconfig", default=None, help="default: $KUBECONFIG, else in-cluster")
    p.add_argument("--metrics-host", default="0.0.0.0")
    p.add_argument("--metrics-port", type=int, default=7473)
    p.add_argument(
        "--source-address",
        default=os.environ.get("EXALB_SOURCE_ADDRESS"),
        help="session source address when a BGPPeer sets none, for peers of its family "
        "(default: the node's InternalIP of the peer's family)",
    )
    p.add_argument(
        "--router-id",
        default=None,
        help="default: the IPv4 source address, else the node's IPv4 InternalIP",
    )
    p.add_argument("--next-hop", default=None, help="IPv4 next hop (default: node address)")
    p.add_argument("--next-hop-v6", default=None, help="IPv6 next hop (default: node address)")
    p.add_argument(
        "--next-hop-address-types",
        default="InternalIP,ExternalIP",
        help="Node status address types to take the next hop from, in order",
    )
    p.add_argument(
        "--ignore-exclude-lb",
        action="store_true",
        help="announce even from nodes labelled exclude-from-external-load-balancers",
    )
    p.add_argument(
        "--announce-delay",
        type=float,
        default=0.0,
        help="seconds to wait after the node turns Ready before announcing (metallb#496)",
    )
    p.add_argument(
        "--hold-new-addresses",
        type=float,
        default=0.0,
        help="seconds to hold back an address that was just assigned, so kube-proxy on this "
        "node programs it before routers send traffic (0: announce at once)",
    )
    p.add_argument(
        "--graceful-shutdown-drain",
        type=float,
        default=0.0,
        help="on SIGTERM, re-announce with GRACEFUL_SHUTDOWN (RFC 8326) and wait this long",
    )
    p.add_argument(
        "--shutdown-withdraw-budget",
        type=float,
        default=5.0,
        help="on SIGTERM, seconds the explicit withdrawals may take before the Cease "
        "NOTIFICATION drops the rest (not with graceful restart: see docs/announcer.md)",
    )
    p.add_argument(
        "--shutdown-withdraw-hold",
        type=float,
        default=0.2,
        help="on SIGTERM, seconds between the withdrawals leaving and the Cease NOTIFICATION",
    )
    p.add_argument("--shutdown-timeout", type=float, default=10.0)
    p.add_argument(
        "--ready-wait",
        type=float,
        default=60.0,
        help="at start-up, /readyz also waits until every session is up with its routes sent, "
        "for at most this many seconds (0: not at all)",
    )
    p.add_argument(
        "--status-interval",
        type=float,
        default=10.0,
        help="seconds between BGPSessionStatus writes (only when changed); 0 turns them off",
    )
    p.add_argument(
        "--owner-service-account",
        default=None,
        help="own this node's heartbeat Lease by this ServiceAccount (in --namespace), so it "
        "is deleted with it when the release is uninstalled (default: unowned)",
    )
    p.add_argument(
        "--heartbeat-lease-duration",
        type=int,
        default=40,
        help="seconds this node's heartbeat Lease lasts; it is renewed every quarter of it, "
        "and exalbctl reports the announcer not running once it is not renewed for this long",
    )
    p.add_argument(
        "--service-event-interval",
        type=float,
        default=30.0,
        help="at most one Announced/Withdrawn Event per Service per this many seconds "
        "(the last state is always told); at least 1",
    )
    p.add_argument("--run-dir", default=None, help="private dir for ExaBGP configs and sockets")
    p.add_argument("--exabgp", default=None, help="ExaBGP executable (default: next to python)")
    p.add_argument("--exabgp-log-level", default="warning")
    p.add_argument(
        "--exabgp-spare",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="keep a started launcher per peer, so a crashed ExaBGP is replaced without "
        "interpreter start-up (faster recovery; one more process's memory per peer)",
    )
    p.add_argument(
        "--node-large-community",
        type=node_community,
        default=NodeCommunity(),
        help="GLOBAL:FUNCTION of the large community naming this node on every route; its "
        "third field is the node's IPv4 address as a number. GLOBAL 'local-as' is each "
        "session's own ASN (default: local-as:1); 'off' sends none",
    )
    p.add_argument(
        "--drain-on-cordon",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="when the node is cordoned, announce with GRACEFUL_SHUTDOWN, then withdraw; "
        "the sessions stay up and the routes return on uncordon",
    )
    p.add_argument(
        "--drain-taints",
        default="",
        help="comma-separated taint keys that drain the node as a cordon does",
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="how long a drained node's routes carry GRACEFUL_SHUTDOWN before the withdrawal",
    )
    p.add_argument(
        "--weight-hold",
        type=float,
        default=5.0,
        help="seconds: a route's link bandwidth (weighted ECMP) changes at most once in each",
    )
    p.add_argument(
        "--data-path-check-interval",
        type=float,
        default=10.0,
        help="seconds between the checks of a passing data path (dataPathCheck); a "
        "target that has not passed twice in a row is checked every second",
    )
    p.add_argument(
        "--data-path-check-timeout",
        type=float,
        default=2.0,
        help="seconds one data path connect may take (above 1 s spans one SYN retransmission)",
    )
    p.add_argument(
        "--data-path-check-concurrency",
        type=int,
        default=8,
        help="data path connects running at once",
    )
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", choices=["json", "console"], default="json")
    args = p.parse_args(argv)
    if not args.node_name:
        p.error("--node-name or $NODE_NAME is required")
    if args.service_event_interval < 1:
        p.error("--service-event-interval must be at least 1 (Event times have 1 s resolution)")
    if args.data_path_check_interval < 1 or not 0 < args.data_path_check_timeout <= 30:
        p.error(
            "--data-path-check-interval must be at least 1 and --data-path-check-timeout "
            "in (0, 30] seconds"
        )
    if args.heartbeat_lease_duration < 1:
        p.error("--heartbeat-lease-duration must be at least 1 (a Lease counts whole seconds)")
    if args.data_path_check_concurrency < 1:
        p.error("--data-path-check-concurrency must be at least 1")
    if not args.bgp_secrets_namespace:
        args.bgp_secrets_namespace = default_bgp_secrets_namespace(args.namespace)
    return args


def node_community(text: str) -> NodeCommunity | None:
    """``off``, or ``GLOBAL:FUNCTION`` with GLOBAL a number or ``local-as``."""
    if text == "off":
        return None
    admin, _, function = text.partition(":")
    try:
        return NodeCommunity(None if admin == "local-as" else _uint32(admin), _uint32(function))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected 'off' or GLOBAL:FUNCTION, GLOBAL a number or 'local-as', "
            "each number in 0..4294967295"
        ) from None


def _uint32(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 2**32 - 1:
        raise ValueError(text)
    return value


def drain_of(args: argparse.Namespace) -> Drain | None:
    taints = frozenset(t.strip() for t in args.drain_taints.split(",") if t.strip())
    if not args.drain_on_cordon and not taints:
        return None
    return Drain(on_cordon=args.drain_on_cordon, taints=taints, seconds=args.drain_seconds)


def options_of(args: argparse.Namespace) -> Options:
    return Options(
        node_name=args.node_name,
        ignore_exclude_lb=args.ignore_exclude_lb,
        announce_delay=args.announce_delay,
        hold_new_addresses=args.hold_new_addresses,
        next_hop_v4=args.next_hop,
        next_hop_v6=args.next_hop_v6,
        address_types=tuple(t.strip() for t in args.next_hop_address_types.split(",") if t),
        source_address=args.source_address,
        router_id=args.router_id,
        node_community=args.node_large_community,
        drain=drain_of(args),
        weight_hold=args.weight_hold,
    )


@dataclass
class Parts:
    """The announcer's running pieces."""

    health: HealthServer
    sources: Sources
    reconciler: Reconciler
    prober: Prober
    status: StatusWriter
    heartbeat: HeartbeatWriter
    bfd: BfdSpeaker  # started by the first peer that asks for BFD

    def start(self) -> None:
        self.health.start()
        self.sources.start()
        self.reconciler.start()
        self.prober.start()
        self.status.start()
        self.heartbeat.start()


def assemble(args: argparse.Namespace, api: rest.Client, run_dir: Path) -> Parts:
    """Build every piece and wire each one's callbacks to the others; nothing starts."""
    metrics = Metrics()
    sources = Sources(api, args.namespace, args.bgp_secrets_namespace, args.node_name)
    events = EventRecorder(api, "exalb-announcer", host=args.node_name).start()
    bfd = BfdSpeaker(on_change=lambda _peer, _up: None)
    reconciler = Reconciler(
        sources,
        options_of(args),
        metrics,
        run_dir=run_dir,
        exabgp=args.exabgp,
        exabgp_log_level=args.exabgp_log_level,
        exabgp_spare=args.exabgp_spare,
        events=events,
        bfd=bfd,
        service_event_interval=args.service_event_interval,
        data_path_max_age=data_path_max_age(args),
    )
    prober = Prober(
        reconciler.probe_targets,
        reconciler.checked,
        metrics,
        args.node_name,
        interval=args.data_path_check_interval,
        timeout=args.data_path_check_timeout,
        concurrency=args.data_path_check_concurrency,
    )
    reconciler.on_targets_changed = prober.wake

    def bfd_changed(peer: str, up: bool | None) -> None:
        if up is None:  # BFD no longer configured for the peer: the series is absent
            metrics.bfd_session_up.remove_by_labels({"peer": peer})
        else:
            metrics.bfd_session_up.labels(peer).set(int(up))
        reconciler.changed("bfd", peer)

    sources.on_change = reconciler.changed
    bfd.on_change = bfd_changed
    health = HealthServer(metrics.registry, args.metrics_host, args.metrics_port)
    health.readiness["informers"] = lambda: (
        None if sources.synced() else f"not synced: {', '.join(sources.unsynced())}"
    )
    health.readiness["announced"] = announced_once(reconciler.announcing, args.ready_wait)
    health.liveness["exabgp"] = lambda: _exabgp_health(reconciler)
    status = StatusWriter(
        api, args.namespace, args.node_name, reconciler.status, args.status_interval
    )
    reconciler.on_session_event = status.wake
    heartbeat = HeartbeatWriter(
        api,
        args.namespace,
        args.node_name,
        args.heartbeat_lease_duration,
        owners=service_account_owner(api, args.namespace, args.owner_service_account),
        on_renewed=metrics.heartbeat_renewed.set,
    )
    return Parts(health, sources, reconciler, prober, status, heartbeat, bfd)


def shut_down(parts: Parts, args: argparse.Namespace) -> None:
    """Stop in the order that keeps the routes justified to the end: reports first, the
    withdrawals and Ceases next, the heartbeat only once nothing is announced."""
    parts.status.stop()
    parts.prober.stop()
    parts.reconciler.shutdown(
        ShutdownTimes(
            budget=args.shutdown_withdraw_budget,
            hold=args.shutdown_withdraw_hold,
            timeout=args.shutdown_timeout,
        ),
        drain=args.graceful_shutdown_drain,
    )
    parts.heartbeat.stop()  # renewed through the drain: the announcer runs until here
    parts.bfd.stop()
    parts.sources.stop()  # never blocks: it shuts the watch sockets down
    parts.health.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    obslog.configure(args.log_level, args.log_format)
    structlog.contextvars.bind_contextvars(node=args.node_name)
    own_dir = args.run_dir is None
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="exalb-"))
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # exalb.kube.rest, the one client layer: see exalb/kube/rest.py for why.
    api = rest.connect(args.kubeconfig, user_agent="exalb-announcer")
    parts = assemble(args, api, run_dir)
    stop = StopSignals()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: where is it stuck?
    parts.start()
    log.info(
        "announcer started",
        namespace=args.namespace,
        bgp_secrets_namespace=args.bgp_secrets_namespace,
        metrics_port=parts.health.port,
    )
    log.info("signal received; shutting down", signal=stop.wait())
    shut_down(parts, args)
    if own_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    log.info("announcer stopped")
    return 0


def data_path_max_age(args: argparse.Namespace) -> float:
    """A pass older than three check intervals (and a connect) no longer counts."""
    return 3 * float(args.data_path_check_interval) + float(args.data_path_check_timeout)


def announced_once(announcing: Callable[[], str | None], wait: float) -> Callable[[], str | None]:
    """A readiness check that holds until this node first announces all it should.

    A rolling update stops the next node's announcer once this one is Ready: were
    that before this node's sessions were up with their routes sent, both nodes
    would be withdrawn at once. It passes for good after the first success, or
    after ``wait`` seconds (a router that is down must not stall every rollout).
    """
    deadline = time.monotonic() + wait
    passed = False

    def check() -> str | None:
        nonlocal passed
        if not passed:
            reason = announcing()
            passed = reason is None or time.monotonic() >= deadline
            return None if passed else reason
        return None

    return check


def _exabgp_health(reconciler: Reconciler) -> str | None:
    down = [name for name, s in reconciler.speakers().items() if not s.running()]
    return f"exabgp not running for {', '.join(down)}" if down else None


if __name__ == "__main__":
    sys.exit(main())
