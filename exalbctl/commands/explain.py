"""``exalbctl explain NAMESPACE/SERVICE``: read what an announcer reads, decide as it does.

The objects are converted by the announcer's own converters (``announcer.kube.convert``,
``core.published``, ``core.pools``), so the decision starts from the very data the
announcers start from.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import exalb.assignments as contract
from announcer.core.model import default_bgp_secrets_namespace
from announcer.core.pools import PoolSpaces
from announcer.core.published import Published
from announcer.kube.convert import SERVICE_NAME_LABEL, endpoints_from, node_from, spec_peer
from exalbctl import exits
from exalbctl.cluster import Cluster, connect
from exalbctl.core.explain import Explanation, explain_service
from exalbctl.core.explain_view import explain_data, explain_tables
from exalbctl.core.heartbeat_view import heartbeats_by_node
from exalbctl.core.mapping import EXALB_API
from exalbctl.output import render


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "explain",
        parents=[common],
        help="per node: does it announce the Service, and if not, the first failing check",
        description="Decides with the announcer's own code, on the objects the announcers "
        "read, with each node's flags as its announcer reports them. Exit 0 when every "
        "node's announcer agrees with the code and some node announces the Service; 1 when "
        "an announcer disagrees (stale, not running: its heartbeat Lease expired) or no node "
        "announces it; 3 when "
        "the cluster cannot be read.",
    )
    p.add_argument("service", metavar="NAMESPACE/SERVICE")
    p.add_argument(
        "--bgp-secrets-namespace",
        default=None,
        help="the announcers' BGP secrets namespace (default: <exalb namespace>-bgp-secrets); "
        "only named in messages: the announcers report the Secrets they miss",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    namespace, sep, name = args.service.partition("/")
    if not sep or not namespace or not name:
        err.write(f"exalbctl explain: {args.service!r} is not NAMESPACE/SERVICE\n")
        return exits.USAGE
    secrets = args.bgp_secrets_namespace or default_bgp_secrets_namespace(args.exalb_namespace)
    cluster = connect(args.kubeconfig, args.context)
    report = read_explanation(cluster, args.exalb_namespace, secrets, namespace, name)
    out.write(render(explain_data(report), explain_tables(report), args.output or "table"))
    return exits.PROBLEMS if report.problems else exits.OK


def read_explanation(
    cluster: Cluster, exalb_ns: str, secrets_ns: str, namespace: str, name: str
) -> Explanation:
    published = Published()
    for cm in cluster.list("v1", "configmaps", exalb_ns, label_selector=f"{contract.LABEL}=true"):
        published.replace(str(cm["metadata"]["name"]), cm.get("data") or {})
    assignment = published.get(contract.entry_key(namespace, name))
    slices = cluster.list(
        "discovery.k8s.io/v1",
        "endpointslices",
        namespace,
        label_selector=f"{SERVICE_NAME_LABEL}={name}",
    )
    nodes = {str(o["metadata"]["name"]): node_from(o) for o in cluster.list("v1", "nodes")}
    peers = [spec_peer(o, secrets_ns) for o in cluster.list(EXALB_API, "bgppeers", exalb_ns)]
    pool_objs = cluster.list(EXALB_API, "vippools", exalb_ns)
    pools, _ = PoolSpaces().update({str(o["metadata"]["name"]): o.get("spec") for o in pool_objs})
    statuses = {
        str(s["metadata"]["name"]): s.get("status") or {}  # named after its node
        for s in cluster.list(EXALB_API, "bgpsessionstatuses", exalb_ns)
    }
    events = cluster.list(
        "v1",
        "events",
        namespace,
        field_selector=f"involvedObject.kind=Service,involvedObject.name={name}",
    )
    return explain_service(
        namespace,
        name,
        assignment,
        endpoints_from(slices).get(f"{namespace}/{name}", []),
        nodes,
        peers,
        pools,
        statuses,
        events,
        heartbeats_by_node(cluster.list("coordination.k8s.io/v1", "leases", exalb_ns)),
    )
