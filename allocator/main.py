"""``exalb-allocator``: flags, wiring, signals.

RBAC it needs (also in docs/allocator.md): cluster-wide get/list/watch on
services and namespaces, patch on services and services/status, create/patch
on events; in its own namespace: get/list/watch on vippools, patch on
vippools/status, get/list/watch/create/update on configmaps, and
get/create/update on leases.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import os
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass

import structlog

from allocator.controller import Allocator, Config
from allocator.kube.peerstatus import PeerStatusSync
from allocator.metrics import AllocatorMetrics
from announcer.core.model import default_bgp_secrets_namespace
from exalb.kube import rest
from exalb.kube.events import EventRecorder
from exalb.kube.lease import LeaderElector, LeaseConfig
from exalb.kube.owner import service_account_owner
from exalb.observability.http import HealthServer
from exalb.observability.logging import configure
from exalb.signals import StopSignals

log = structlog.get_logger("allocator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="exalb-allocator", description=__doc__)
    p.add_argument(
        "--namespace",
        default=env("POD_NAMESPACE", "exalb-system"),
        help="where VIPPools, the Lease and the assignments ConfigMaps live",
    )
    p.add_argument(
        "--bgp-secrets-namespace",
        default=env("EXALB_BGP_SECRETS_NAMESPACE"),
        help="where BGPPeers' password Secrets live (default: <namespace>-bgp-secrets)",
    )
    p.add_argument("--kubeconfig", default=env("KUBECONFIG"), help="default: in-cluster")
    p.add_argument(
        "--load-balancer-class",
        default=None,
        help="handle only Services of this spec.loadBalancerClass (default: only Services "
        "with no class)",
    )
    p.add_argument(
        "--identity", default=env("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    )
    p.add_argument("--lease-name", default="exalb-allocator")
    p.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        help="seconds a standby waits on an unchanged Lease before taking it over",
    )
    p.add_argument(
        "--renew-deadline",
        type=float,
        default=10.0,
        help="seconds after a renew started that the leader stops writing unless renewed",
    )
    p.add_argument(
        "--retry-period", type=float, default=2.0, help="seconds between two Lease renewals"
    )
    p.add_argument("--configmap-prefix", default="exalb-assignments")
    p.add_argument(
        "--owner-service-account",
        default=None,
        help="own the Lease and the assignments ConfigMaps by this ServiceAccount (in "
        "--namespace), so they are deleted with it (default: unowned)",
    )
    p.add_argument(
        "--metrics-bind",
        default=env("EXALB_METRICS_BIND", "0.0.0.0:7472"),
        help="host:port for /metrics, /healthz and /readyz",
    )
    p.add_argument("--write-workers", type=int, default=8)
    p.add_argument("--log-level", default=env("EXALB_LOG_LEVEL", "info"))
    p.add_argument("--log-format", default="json", choices=["json", "console"])
    return p.parse_args(argv)


def tune_gc_for_a_large_heap() -> None:
    """Fewer young-generation collections: the informers allocate many small dicts."""
    gc.set_threshold(50_000, 20, 100)


def freeze_heap() -> None:
    """Move what the initial lists built out of every later collection's way.

    Tens of thousands of long-lived objects make every full GC pass walk them all;
    freezing them once the caches are synced keeps reconcile latency flat.
    """
    gc.collect()
    gc.freeze()


@dataclass
class Parts:
    """The allocator's running pieces; the elector's changes are wired to the others."""

    http: HealthServer
    elector: LeaderElector
    events: EventRecorder
    allocator: Allocator
    peer_status: PeerStatusSync


def assemble(args: argparse.Namespace, api: rest.Client) -> Parts:
    """Build and wire every piece; only the health server and the Event writer start."""
    metrics = AllocatorMetrics()
    host, _, port = args.metrics_bind.rpartition(":")
    http = HealthServer(metrics.registry, host or "0.0.0.0", int(port)).start()
    owners = service_account_owner(api, args.namespace, args.owner_service_account)
    lease = LeaseConfig(
        args.namespace,
        args.lease_name,
        args.identity,
        args.lease_duration,
        args.renew_deadline,
        args.retry_period,
        tuple(owners),
    )
    elector = LeaderElector(api, lease)
    events = EventRecorder(
        api, "exalb-allocator", host=args.identity, validity=elector.remaining
    ).start()
    config = Config(
        args.namespace,
        args.load_balancer_class,
        args.configmap_prefix,
        write_workers=args.write_workers,
        owners=owners,
    )
    allocator = Allocator(api, config, elector.remaining, metrics, events)
    peer_status = PeerStatusSync(
        api,
        args.namespace,
        args.bgp_secrets_namespace or default_bgp_secrets_namespace(args.namespace),
        elector.is_leader,
        metrics,
    )
    elector.on_change(lambda leading: metrics.leader.set(1 if leading else 0))
    elector.on_change(lambda _leading: allocator.kick())
    elector.on_change(lambda _leading: peer_status.kick())
    http.readiness["caches"] = lambda: None if allocator.synced() else "informers not synced"
    http.liveness["reconcile"] = lambda: allocator.last_reconcile_error
    return Parts(http, elector, events, allocator, peer_status)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` dumps every stack
    tune_gc_for_a_large_heap()
    configure(args.log_level, args.log_format)
    structlog.contextvars.bind_contextvars(component="allocator", identity=args.identity)
    stop = StopSignals()
    api = rest.connect(args.kubeconfig, pool_size=32, user_agent="exalb-allocator")
    parts = assemble(args, api)
    log.info(
        "starting",
        namespace=args.namespace,
        lb_class=args.load_balancer_class,
        metrics_port=parts.http.port,
    )
    parts.allocator.start()
    parts.peer_status.start()
    parts.elector.start()
    while not stop.received and not parts.allocator.synced():
        time.sleep(0.1)
    freeze_heap()

    log.info("stopping", signal=stop.wait())
    parts.elector.stop(release=True)  # writes stop first: is_leader() is false from here on
    parts.allocator.stop()
    parts.peer_status.stop()
    parts.events.flush(2.0)
    parts.http.stop()
    log.info("stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
