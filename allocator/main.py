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
import os
import signal
import socket
import sys
import threading
import uuid

import structlog

from allocator.controller import Allocator, Config
from allocator.metrics import AllocatorMetrics
from exalb.kube import rest
from exalb.kube.connect import api_client
from exalb.kube.events import EventRecorder
from exalb.kube.lease import LeaderElector, LeaseConfig
from exalb.observability.http import HealthServer
from exalb.observability.logging import configure

log = structlog.get_logger("allocator")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="exalb-allocator", description=__doc__)
    p.add_argument(
        "--namespace",
        default=env("POD_NAMESPACE", "exalb-system"),
        help="where VIPPools, the Lease and the assignments ConfigMaps live",
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
    p.add_argument("--lease-duration", type=float, default=15.0)
    p.add_argument("--renew-deadline", type=float, default=10.0)
    p.add_argument("--retry-period", type=float, default=2.0)
    p.add_argument("--configmap-prefix", default="exalb-assignments")
    p.add_argument(
        "--metrics-bind",
        default=env("EXALB_METRICS_BIND", "0.0.0.0:7472"),
        help="host:port for /metrics, /healthz and /readyz",
    )
    p.add_argument("--write-workers", type=int, default=8)
    p.add_argument("--log-level", default=env("EXALB_LOG_LEVEL", "info"))
    p.add_argument("--log-format", default="json", choices=["json", "console"])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` dumps every stack
    configure(args.log_level, args.log_format)
    structlog.contextvars.bind_contextvars(component="allocator", identity=args.identity)
    api = api_client(args.kubeconfig)
    metrics = AllocatorMetrics()
    host, _, port = args.metrics_bind.rpartition(":")
    http = HealthServer(metrics.registry, host or "0.0.0.0", int(port)).start()

    allocator: Allocator | None = None

    def on_leadership(leading: bool) -> None:
        metrics.leader.set(1 if leading else 0)
        if allocator is not None:
            allocator.kick()

    elector = LeaderElector(
        api,
        LeaseConfig(
            args.namespace,
            args.lease_name,
            args.identity,
            args.lease_duration,
            args.renew_deadline,
            args.retry_period,
        ),
        on_change=on_leadership,
    )
    events = EventRecorder(
        rest.connect(args.kubeconfig), "exalb-allocator", host=args.identity
    ).start()
    allocator = Allocator(
        api,
        Config(
            args.namespace,
            args.load_balancer_class,
            args.configmap_prefix,
            write_workers=args.write_workers,
        ),
        elector.is_leader,
        metrics,
        events,
    )
    http.readiness["caches"] = lambda: None if allocator.synced() else "informers not synced"
    http.liveness["reconcile"] = lambda: allocator.last_reconcile_error
    log.info(
        "starting",
        namespace=args.namespace,
        lb_class=args.load_balancer_class,
        metrics_port=http.port,
    )
    allocator.start()
    elector.start()

    done = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    elector.stop(release=True)  # writes stop first: is_leader() is false from here on
    allocator.stop()
    events.flush(2.0)
    http.stop()
    log.info("stopped")
    sys.exit(0)


if __name__ == "__main__":
    main()
