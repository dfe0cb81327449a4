"""``exalbctl status``: read pools, Services, Events and sessions; print; exit 1 on problems."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any, TextIO

from exalbctl import exits
from exalbctl.cluster import Cluster, connect
from exalbctl.core.heartbeat_view import heartbeats_by_node
from exalbctl.core.status import StatusReport, build_status
from exalbctl.core.status_view import status_data, status_tables
from exalbctl.output import render

EXALB_API = "exalb.io/v1alpha1"
PENDING_EVENTS = "involvedObject.kind=Service,type=Warning"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "status",
        parents=[common],
        help="pools and their use, Services with IP and pool, pending Services, sessions",
        description="Exit 0 when all is well, 1 when something needs a look (a pending "
        "Service, a pool not ready or exhausted, a session down, an announcer whose heartbeat "
        "expired), 3 when the cluster "
        "cannot be read.",
    )
    p.add_argument(
        "--load-balancer-class",
        default=None,
        help="the allocator's --load-balancer-class (default: none, as the allocator's: "
        "Services with no class)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = read_status(
        connect(args.kubeconfig, args.context), args.exalb_namespace, args.load_balancer_class
    )
    out.write(render(status_data(report), status_tables(report), args.output or "table"))
    return exits.PROBLEMS if report.problems else exits.OK


def read_status(cluster: Cluster, namespace: str, lb_class: str | None) -> StatusReport:
    pools = cluster.list(EXALB_API, "vippools", namespace)
    services = cluster.list("v1", "services")
    sessions = cluster.list(EXALB_API, "bgpsessionstatuses", namespace)
    heartbeats = heartbeats_by_node(cluster.list("coordination.k8s.io/v1", "leases", namespace))
    now = datetime.now(UTC)
    report = build_status(pools, services, [], sessions, heartbeats, now, lb_class)
    if not report.pending:
        return report
    # Events are read only when they can explain something: a Service without an IP.
    events = cluster.list("v1", "events", field_selector=PENDING_EVENTS)
    return build_status(pools, services, events, sessions, heartbeats, now, lb_class)
