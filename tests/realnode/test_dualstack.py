"""IPv6 and dual-stack for real: the chart on the bed's dual-stack nodes, FRR as the judge.

A ``PreferDualStack`` Service gets one address of each family from a dual-stack
VIPPool. The announcers (real ExaBGP) announce its /32 and /128: first over one
session per family (an IPv4 and an IPv6 BGPPeer), then both over one IPv4 session
(``dualStackAddressFamily``, MP-BGP), then both over one IPv6 session. FRR's RIB
says which neighbor each path came from and its next hop; FRR installs them in
its kernel and forwards, and HTTP from a client namespace answers on both addresses.
The tests run in file order on one release.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from testbed.dualstack import ROUTER_ADDRESS_V6
from testbed.nodes import ROUTER_ADDRESS, ROUTER_ASN, Bed
from testbed.procs import wait_for

from .chart import EXALB_ASN, SYSTEM, announcer_logs, installed
from .probe import http_gets, probe_namespace
from .workloads import apply, ready_pods, web

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

POOLS = ["203.0.113.16/28", "2001:db8:5::/124"]
REQUESTS = 20


def _peer(name: str, address: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "exalb.io/v1alpha1",
        "kind": "BGPPeer",
        "metadata": {"name": name, "namespace": SYSTEM},
        "spec": {"myASN": EXALB_ASN, "peerASN": ROUTER_ASN, "peerAddress": address, **spec},
    }


def _only_peers(bed: Bed, *peers: dict[str, Any]) -> None:
    """Exactly these BGPPeers exist: the others are deleted."""
    apply(bed, *peers)
    keep = {p["metadata"]["name"] for p in peers}
    existing = bed.kubectl("get", "bgppeers", "-n", SYSTEM, "-o", "name").split()
    stale = [name for name in existing if name.split("/", 1)[1] not in keep]
    if stale:
        bed.kubectl("delete", "-n", SYSTEM, *stale)


@pytest.fixture(scope="module")
def exalb(bed: Bed) -> Iterator[Bed]:
    """The chart installed with a dual-stack VIPPool; each test chooses the BGPPeers."""
    with installed(bed, pool=POOLS) as running:
        yield running


@pytest.fixture(scope="module")
def service(exalb: Bed) -> Iterator[tuple[str, str]]:
    """The web pods (one per node) behind a PreferDualStack Service: its /32 and /128."""
    namespace = "dualstack-web"
    exalb.kubectl("create", "namespace", namespace)
    wait_for(
        "the default ServiceAccount",
        lambda: "default" in exalb.kubectl("get", "serviceaccounts", "-n", namespace, "-o", "name"),
        timeout=30,
        interval=0.2,
    )
    try:
        web(exalb, namespace, replicas=len(exalb.nodes))
        ready_pods(exalb, namespace, "app=web", len(exalb.nodes))
        yield _dual_stack_service(exalb, namespace)
    finally:
        exalb.kubectl("delete", "namespace", namespace, "--timeout=90s")


def _dual_stack_service(bed: Bed, namespace: str) -> tuple[str, str]:
    apply(
        bed,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "type": "LoadBalancer",
                "ipFamilyPolicy": "PreferDualStack",
                "ipFamilies": ["IPv4", "IPv6"],
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        },
    )
    ips: list[str] = []

    def assigned() -> bool:
        nonlocal ips
        svc = json.loads(bed.kubectl("get", "service", "-n", namespace, "web", "-o", "json"))
        ips = [i["ip"] for i in svc["status"].get("loadBalancer", {}).get("ingress", [])]
        return len(ips) == 2

    wait_for("an address of each family", assigned, timeout=60, interval=0.2)
    v4, v6 = sorted(ips, key=lambda ip: ipaddress.ip_address(ip).version)
    assert [ipaddress.ip_address(v4) in ipaddress.ip_network(p) for p in POOLS] == [True, False]
    assert ipaddress.ip_address(v6) in ipaddress.ip_network(POOLS[1])
    return f"{v4}/32", f"{ipaddress.ip_address(v6)}/128"


def _paths(bed: Bed, prefix: str) -> set[tuple[str | None, str]]:
    """FRR's paths to ``prefix`` as (the neighbor it came from, next hop)."""
    assert bed.router is not None
    return {(p.peer, p.next_hop) for p in bed.router.paths(prefix)}


def _wait_paths(bed: Bed, prefix: str, expected: set[tuple[str, str]]) -> float:
    t0 = time.monotonic()
    wait_for(
        f"FRR's paths to {prefix} == {sorted(expected)}",
        lambda: _paths(bed, prefix) == expected,
        timeout=60,
        interval=0.2,
        on_timeout=lambda: (
            f"FRR has {sorted(map(str, _paths(bed, prefix)))}\n"
            f"sessions {bed.router and bed.router.sessions()}\n{announcer_logs(bed)}"
        ),
    )
    return time.monotonic() - t0


def _established(bed: Bed) -> set[str]:
    assert bed.router is not None
    return {peer for peer, s in bed.router.sessions().items() if s.established}


def _wait_sessions(bed: Bed, expected: set[str]) -> None:
    wait_for(
        f"FRR's established sessions == {sorted(expected)}",
        lambda: _established(bed) == expected,
        timeout=90,
        interval=0.5,
        on_timeout=lambda: f"FRR: {bed.router and bed.router.sessions()}\n{announcer_logs(bed)}",
    )


def _v4(bed: Bed) -> list[str]:
    return [n.address for n in bed.nodes]


def _v6(bed: Bed) -> list[str]:
    return [str(n.address_v6) for n in bed.nodes]


def test_one_session_per_family_ipv6_sessions_carry_the_128(
    exalb: Bed, service: tuple[str, str]
) -> None:
    v4_prefix, v6_prefix = service
    _only_peers(exalb, _peer("router-v4", ROUTER_ADDRESS), _peer("router-v6", ROUTER_ADDRESS_V6))
    _wait_sessions(exalb, {*_v4(exalb), *_v6(exalb)})
    took = _wait_paths(exalb, v6_prefix, {(a, a) for a in _v6(exalb)})
    _wait_paths(exalb, v4_prefix, {(a, a) for a in _v4(exalb)})
    print(f"\nper-family sessions: the /128 at FRR from every node {took:.1f}s after Established")


@pytest.mark.parametrize("family", [4, 6])
def test_one_session_carries_both_families(
    exalb: Bed, service: tuple[str, str], family: int
) -> None:
    v4_prefix, v6_prefix = service
    router, sessions = (
        (ROUTER_ADDRESS, _v4(exalb)) if family == 4 else (ROUTER_ADDRESS_V6, _v6(exalb))
    )
    _only_peers(exalb, _peer(f"router-v{family}", router, dualStackAddressFamily=True))
    _wait_sessions(exalb, set(sessions))
    # Both prefixes over each node's one session, each with the node's address of its family.
    _wait_paths(exalb, v4_prefix, set(zip(sessions, _v4(exalb), strict=True)))
    _wait_paths(exalb, v6_prefix, set(zip(sessions, _v6(exalb), strict=True)))


def test_http_answers_on_both_addresses_through_the_router(
    exalb: Bed, service: tuple[str, str]
) -> None:
    """FRR installed both routes (ECMP over the nodes) and forwards; kube-proxy reaches a pod."""
    v4_prefix, v6_prefix = service
    _only_peers(exalb, _peer("router-v4", ROUTER_ADDRESS, dualStackAddressFamily=True))
    _wait_paths(exalb, v6_prefix, set(zip(_v4(exalb), _v6(exalb), strict=True)))
    _wait_paths(exalb, v4_prefix, {(a, a) for a in _v4(exalb)})
    with probe_namespace(exalb) as client:
        for prefix in (v4_prefix, v6_prefix):
            address = prefix.split("/")[0]
            ms = sorted(s * 1000 for s in http_gets(client, address, REQUESTS))
            assert len(ms) == REQUESTS
            print(
                f"\n{REQUESTS} HTTP requests to {address}, each on a new connection, all 200: "
                f"median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms"
            )
