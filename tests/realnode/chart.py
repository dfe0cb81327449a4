"""The chart installed on the bed, Services in front of the web pods, and what FRR reports.

Shared by the real-node tests that need exalb running: each module installs
the release once (the ``exalb`` fixture in conftest.py) and judges by the
router's RIB, its kernel's routes, or the client's requests.
"""

from __future__ import annotations

import io
import ipaddress
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from exalbctl.main import run as exalbctl
from testbed import netns
from testbed.nodes import ROUTER_ADDRESS, ROUTER_ASN, Bed
from testbed.procs import wait_for

from .workloads import apply, ready_pods

RELEASE, SYSTEM = "exalb", "exalb-system"
ANNOUNCERS = "app.kubernetes.io/instance=exalb,app.kubernetes.io/component=announcer"
POOL = "203.0.113.0/28"
EXALB_ASN = 64513
CRDS = ("vippools.exalb.io", "bgppeers.exalb.io", "bgpsessionstatuses.exalb.io")


@contextmanager
def installed(
    bed: Bed,
    peers: Mapping[str, Mapping[str, Any]] | None = None,
    pool: Sequence[str] = (POOL,),
    values: Mapping[str, Any] | None = None,
    advertisements: Sequence[Mapping[str, Any]] = (),
) -> Iterator[Bed]:
    """The chart, a pool and BGPPeers to the router: by default one, its loopback address for
    every node; ``peers`` (name to what it adds to the spec) replaces it. ``values`` are the
    chart's, ``advertisements`` the pool's ``bgpAdvertisements`` (none: the default one).

    On exit the release, the CRDs and the namespaces go, so the next module
    finds the bed as it was.
    """
    bed.install_chart(RELEASE, SYSTEM, values or {})
    base = {"myASN": EXALB_ASN, "peerASN": ROUTER_ASN, "peerAddress": ROUTER_ADDRESS}
    apply(
        bed,
        {
            "apiVersion": "exalb.io/v1alpha1",
            "kind": "VIPPool",
            "metadata": {"name": "test", "namespace": SYSTEM},
            "spec": {
                "addresses": list(pool),
                **({"bgpAdvertisements": list(advertisements)} if advertisements else {}),
            },
        },
        *(
            {
                "apiVersion": "exalb.io/v1alpha1",
                "kind": "BGPPeer",
                "metadata": {"name": name, "namespace": SYSTEM},
                "spec": {**base, **spec},
            }
            for name, spec in (peers or {"router": {}}).items()
        ),
    )
    try:
        yield bed
    finally:
        if RELEASE in bed.helm("list", "-n", SYSTEM, "-q").split():
            bed.helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout=120s")
        # What an uninstall keeps: the CRDs (with the pool, the peer and the session
        # statuses) and the namespaces.
        bed.kubectl("delete", "crd", *CRDS, "--ignore-not-found", "--timeout=60s")
        bed.kubectl(
            "delete", "namespace", SYSTEM, f"{SYSTEM}-bgp-secrets", "--ignore-not-found",
            "--timeout=90s",
        )  # fmt: skip


def addresses(bed: Bed) -> dict[str, str]:
    """Node name to node address (the next hop it announces)."""
    return {n.name: n.address for n in bed.nodes}


def established(bed: Bed) -> set[str]:
    assert bed.router is not None
    return {peer for peer, s in bed.router.sessions().items() if s.established}


def wait_established(bed: Bed, family: int = 4) -> None:
    """Every node's session of ``family`` (its address of that family the peer) Established."""
    nodes = {n.address if family == 4 else n.address_v6 for n in bed.nodes}
    wait_for(
        f"every node's IPv{family} session Established at FRR",
        lambda: nodes <= established(bed),
        timeout=60,
        interval=0.5,
        on_timeout=lambda: f"FRR: {bed.router and bed.router.sessions()}\n" + announcer_logs(bed),
    )


def next_hops(bed: Bed, prefix: str) -> set[str]:
    assert bed.router is not None
    return {p.next_hop for p in bed.router.paths(prefix)}


def wait_next_hops(bed: Bed, prefix: str, expected: set[str], timeout: float = 30) -> float:
    """Seconds until FRR's next hops for ``prefix`` are exactly ``expected``."""
    t0 = time.monotonic()
    wait_for(
        f"FRR's next hops for {prefix} == {sorted(expected)}",
        lambda: next_hops(bed, prefix) == expected,
        timeout=timeout,
        interval=0.1,
        on_timeout=lambda: (
            f"FRR has {sorted(next_hops(bed, prefix))}\n{router_side(bed)}\n"
            f"{explained_by_address(bed, prefix)}\n{routes_told(bed)}\n{api_sockets(bed)}\n"
            f"{announcer_logs(bed)}"
        ),
    )
    return time.monotonic() - t0


def router_side(bed: Bed) -> str:
    """FRR's neighbours, BFD peers and log tails: the router's half of a failure's story."""
    if bed.router is None:
        return ""
    try:
        shown = bed.router.vtysh("show bgp summary", "show bfd peers brief")
    except Exception as exc:  # the router itself may be what failed
        shown = f"vtysh failed: {exc}"
    return f"--- FRR ---\n{shown}\n{bed.router.log_tail()}"


def explain(bed: Bed, service_ref: str, output: str = "json") -> str:
    """``exalbctl explain`` of ``namespace/name``: what exalb itself says of the Service."""
    out, err = io.StringIO(), io.StringIO()
    exalbctl(["explain", service_ref, "-o", output, "--kubeconfig", str(bed.kubeconfig)], out, err)
    return out.getvalue() + err.getvalue()


def explained_by_address(bed: Bed, prefix: str) -> str:
    """``exalbctl explain`` of the Service that has ``prefix``'s address: each node's word."""
    address = prefix.split("/", maxsplit=1)[0]
    try:
        services = json.loads(bed.kubectl("get", "services", "-A", "-o", "json"))["items"]
        owners = [
            f"{s['metadata']['namespace']}/{s['metadata']['name']}"
            for s in services
            for ingress in (s.get("status", {}).get("loadBalancer", {}).get("ingress") or [])
            if ingress.get("ip") == address
        ]
        said = [f"--- exalbctl explain {ref} ---\n{explain(bed, ref, 'table')}" for ref in owners]
    except Exception as exc:  # the story of a failure must not fail itself
        return f"exalbctl explain of {address}: {exc!r}"
    return "\n".join(said) or f"no Service has {address}"


ROUTE_METRICS = (
    "exalb_announcer_services_announced",  # the decision's count
    "exalb_announcer_bgp_announced_prefixes",  # routes ExaBGP acknowledged, per peer
    "exalb_announcer_bgp_updates_sent_total",  # UPDATEs ExaBGP reported sending, per peer
    "exalb_announcer_command",
)


def announcer_metrics(bed: Bed, k: int, prefixes: Sequence[str]) -> str:
    """Node k's announcer metrics whose names start with one of ``prefixes``, read from
    inside the node (the announcer listens on the node's address)."""
    node = bed.nodes[k - 1]
    url = f"http://{node.address}:7473/metrics"
    code = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    )
    metrics = netns.run(node.netns, ["python3", "-c", code])
    return "\n".join(m for m in metrics.splitlines() if m.startswith(tuple(prefixes)))


def routes_told(bed: Bed) -> str:
    """What each announcer decided, ExaBGP acknowledged and reported sending: where a route
    the router lacks was lost."""
    out = []
    for k, node in enumerate(bed.nodes, start=1):
        try:
            out.append(f"--- {node.name} ---\n{announcer_metrics(bed, k, ROUTE_METRICS)}")
        except Exception as exc:  # the story of a failure must not fail itself
            out.append(f"--- {node.name}: metrics unreadable: {exc!r}")
    return "\n".join(out)


def allocator_side(bed: Bed) -> str:
    """The allocators' Lease and log tails: who leads, and what each said last."""
    try:
        lease = bed.kubectl("get", "leases", "-n", SYSTEM, "-o", "yaml")
        logs = bed.kubectl(
            "logs", "-n", SYSTEM, "-l", "app.kubernetes.io/instance=exalb",
            "-c", "allocator", "--tail=40", "--prefix",
        )  # fmt: skip
    except RuntimeError as exc:
        return str(exc)
    return f"--- leases ---\n{lease}\n--- allocator logs ---\n{logs}\n{api_sockets(bed)}"


def api_sockets(bed: Bed) -> str:
    """Each node's TCP connections to the API server, with their timers and queues: whether
    a watch that hears nothing is a connection that carries nothing."""
    out = []
    for node in bed.nodes:
        try:
            shown = netns.run(node.netns, ["ss", "-tnoip", "( dport = :443 or dport = :6443 )"])
        except Exception as exc:  # the story of a failure must not fail itself
            shown = repr(exc)
        out.append(f"--- {node.name}: sockets to the API server ---\n{shown}")
    return "\n".join(out)


def announcer_logs(bed: Bed) -> str:
    try:
        return bed.kubectl("logs", "-n", SYSTEM, "-l", ANNOUNCERS, "-c", "announcer", "--tail=30")
    except RuntimeError as exc:
        return str(exc)


def service(bed: Bed, namespace: str, name: str, policy: str, family: int = 4) -> str:
    """A LoadBalancer Service in front of the web pods; the address of ``family`` exalb gave it
    (an IPv6 one makes the Service PreferDualStack)."""
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "externalTrafficPolicy": policy,
        "selector": {"app": "web"},
        "ports": [{"port": 80, "targetPort": 8080}],
    }
    if family == 6:
        spec |= {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv6"]}
    apply(
        bed,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
    )
    ips: list[str] = []

    def assigned() -> bool:
        nonlocal ips
        svc = json.loads(bed.kubectl("get", "service", "-n", namespace, name, "-o", "json"))
        ingress = svc["status"].get("loadBalancer", {}).get("ingress", [])
        ips = [i["ip"] for i in ingress if ipaddress.ip_address(i["ip"]).version == family]
        return bool(ips)

    wait_for(
        f"an IPv{family} address for {namespace}/{name}",
        assigned,
        timeout=60,
        interval=0.2,
        on_timeout=lambda: allocator_side(bed),
    )
    (ip,) = ips
    return str(ipaddress.ip_network(ip))


def pods_by_node(bed: Bed, namespace: str, count: int) -> dict[str, str]:
    """Node name to the name of its web pod, once ``count`` web pods are Ready."""
    return {p.spec.node_name: p.metadata.name for p in ready_pods(bed, namespace, "app=web", count)}


def roll_announcers(bed: Bed, prefix: str, tag: str) -> list[int]:
    """``helm upgrade`` with a new pod annotation, so every announcer is replaced in turn.

    Returns how many next hops FRR held for ``prefix`` at each 0.1 s sample meanwhile.
    """
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            bed.install_chart(
                RELEASE, SYSTEM, {"announcer": {"podAnnotations": {"exalb.io/test-roll": tag}}}
            )
        except BaseException as exc:
            errors.append(exc)

    samples: list[int] = []
    rolling = threading.Thread(target=upgrade)
    rolling.start()
    deadline = time.monotonic() + 240
    while rolling.is_alive() and time.monotonic() < deadline:
        samples.append(len(next_hops(bed, prefix)))
        time.sleep(0.1)
    rolling.join(timeout=10)
    assert not rolling.is_alive(), "helm upgrade still running after 240 s"
    assert not errors, errors
    return samples
