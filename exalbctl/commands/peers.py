"""``exalbctl peers``: read BGPPeers, BGPSessionStatuses and heartbeat Leases; print; exit 1
on a session down or an announcer not running."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any, TextIO

from exalbctl import exits
from exalbctl.cluster import connect
from exalbctl.core.heartbeat_view import heartbeats_by_node
from exalbctl.core.peers import build_peers
from exalbctl.core.peers_view import peers_data, peers_tables
from exalbctl.output import render

EXALB_API = "exalb.io/v1alpha1"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "peers",
        parents=[common],
        help="BGP sessions per node and BGPPeer: state, prefixes, negotiation, NOTIFICATIONs",
        description="Exit 0 when every session is established, 1 when one is not (or a node "
        "cannot use a peer, or its announcer's heartbeat expired), 3 when the cluster cannot "
        "be read.",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    cluster = connect(args.kubeconfig, args.context)
    ns = args.exalb_namespace
    report = build_peers(
        cluster.list(EXALB_API, "bgppeers", ns),
        cluster.list(EXALB_API, "bgpsessionstatuses", ns),
        heartbeats_by_node(cluster.list("coordination.k8s.io/v1", "leases", ns)),
        datetime.now(UTC),
    )
    out.write(render(peers_data(report), peers_tables(report), args.output or "table"))
    return exits.PROBLEMS if report.problems else exits.OK
