"""Whatever the assignments ConfigMaps say, the router sees only what a VIPPool justifies,
and deleting them withdraws nothing: real announcers, ExaBGP, GoBGP and FRR, real API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

import exalb.assignments as contract
from exalb.assignments import Advertisement
from testbed.allocator import AllocatorProc, apply_rbac, delete_rbac, start_allocator
from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.procs import wait_for
from testbed.routers import Router
from testbed.routers.base import settle
from testbed.routers.frr import Frr
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

KINDS = ["gobgp", "frr"]  # the routers whose UPDATE counters the testbed reads
UNJUSTIFIED = "exalb_announcer_unjustified_prefixes"
STALE = "exalb_announcer_assignments_stale"
WINDOW = 2.0  # seconds over which nothing may reach the router

WEB = "198.51.100.60"
# Service name -> (IP, advertisement, what the router would get, the refusal's reason)
BAD = {
    "zero": ("198.51.100.61", Advertisement(aggregation_length=0), "0.0.0.0/0", "defaultRoute"),
    "outside": ("203.0.113.200", Advertisement(), "203.0.113.200/32", "ipOutsidePool"),
    "short": (
        "198.51.100.62",
        Advertisement(aggregation_length=16),
        "198.51.0.0/16",
        "prefixOutsidePool",
    ),
}


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample of the Prometheus text ``text``, by name and exact labels."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head == want:
            return float(value)
    return None


def settled_updates(r: Router, peer: str, quiet: float = 1.5) -> int:
    """The router's UPDATE count from ``peer`` once it has not moved for ``quiet`` seconds.

    The baseline of "nothing was sent": routers count End-of-RIB markers as UPDATEs, and
    ExaBGP sends them (one per family) just after the routes a test waits for.
    """
    counts = [r.updates_received(peer)]

    def unchanged() -> bool:
        settle(quiet)
        counts.append(r.updates_received(peer))
        return counts[-1] == counts[-2]

    wait_for("the UPDATE count settles", unchanged, 30)
    return counts[-1]


def nothing_sent(r: Router, peer: str, prefixes: Iterable[str]) -> Callable[[], None]:
    """A check that the router has heard nothing about ``prefixes`` since this call.

    GoBGP's UPDATE counter says it for every prefix. FRR's also counts End-of-RIB markers,
    which ExaBGP may send at any time after the routes, so for FRR the proof is each
    path's own last-update stamp: a withdraw and re-announce moves it.
    """
    if isinstance(r, Frr):
        # FRR derives the stamp from an uptime, so it jitters by a second (as "up since"
        # does, see testbed.lab.same_session); read it 2 s after the routes arrived, so
        # that any later re-announce moves it by more than that jitter.
        settle(2)
        before = {p: r.last_updates(p) for p in prefixes}
        assert all(stamps and all(stamps) for stamps in before.values()), before

        def unchanged() -> None:
            after = {p: r.last_updates(p) for p in prefixes}
            moved = {
                p: (before[p], after[p])
                for p in before
                if len(after[p]) != len(before[p])
                or any(abs(a - b) > 1 for a, b in zip(after[p], before[p], strict=True))
            }
            assert not moved, moved

        return unchanged
    updates = settled_updates(r, peer)

    def no_update() -> None:
        assert r.updates_received(peer) == updates

    return no_update


def hold(r: Router, prefixes: dict[str, set[str]], absent: set[str], seconds: float) -> None:
    """For ``seconds``, every RIB read has ``prefixes`` via their next hops and no ``absent``."""
    deadline = time.monotonic() + seconds
    reads = 0
    while True:  # the last read starts after the window: it sees its end
        rib = r.rib()
        reads += 1
        assert not absent & set(rib), rib
        for prefix, hops in prefixes.items():
            assert {p.next_hop for p in rib.get(prefix, [])} == hops, (prefix, rib)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert reads >= 2, f"only {reads} RIB reads in {seconds} s"


def one_node(lab: Lab, router: RouterFactory, kind: str, neighbors: int = 1) -> Router:
    """A router accepting ``neighbors`` nodes, its BGPPeer, and node 1's announcer."""
    r = router(kind, lab.router_ip, 64512, lab.neighbors(neighbors))
    lab.add_peer("tor", r)
    lab.add_node(1)
    return r


def delete_assignments(lab: Lab) -> None:
    cms = lab.core.list_namespaced_config_map(
        lab.namespace, label_selector=f"{contract.LABEL}=true"
    ).items
    assert cms, "no assignments ConfigMap to delete"
    for cm in cms:
        lab.core.delete_namespaced_config_map(cm.metadata.name, lab.namespace)


@pytest.mark.parametrize("kind", KINDS)
def test_unjustified_prefixes_never_reach_the_router(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = one_node(lab, router, kind)
    for name in ("web", *BAD):
        lab.set_endpoints(name, {1: True})
    web = lab.assignment("web", WEB)
    lab.set_assignments([web])
    r.wait_next_hops(f"{WEB}/32", {lab.hop(1)}, timeout=30)
    updates = settled_updates(r, lab.source(1))

    # A careless hand edit of the ConfigMap: a default route, an IP in no pool, a /16.
    data = contract.layout({web.key: contract.encode(web)}, 1)[0]
    for name, (ip, adv, _, _) in BAD.items():
        a = lab.assignment(name, ip, advertisements=[adv])
        data[a.key] = contract.encode(a)
    lab.set_assignment_data(data)
    wait_for(
        "the announcer refused the three entries",
        lambda: all(
            sample(lab.metrics(1), UNJUSTIFIED, reason=reason) == 1.0
            for _, _, _, reason in BAD.values()
        ),
        20,
        on_timeout=lab.logs,
    )
    hold(r, {f"{WEB}/32": {lab.hop(1)}}, {p for _, _, p, _ in BAD.values()}, WINDOW)
    assert r.updates_received(lab.source(1)) == updates  # nothing at all was sent

    def events() -> dict[str, str]:
        items = lab.core.list_namespaced_event(
            lab.namespace, field_selector="reason=UnjustifiedPrefix"
        ).items
        return {e.involved_object.name: e.message for e in items if e.type == "Warning"}

    wait_for("a Warning Event on each Service", lambda: set(events()) == set(BAD), 20)
    assert "default route" in events()["zero"]
    assert "is not in VIPPool 'pool'" in events()["outside"]
    log = lab.node(1).proc.tail(400)  # type: ignore[union-attr]
    for name in BAD:
        assert f"{lab.namespace}.{name}" in log and "prefix refused" in log
    for name, (_, _, _, reason) in BAD.items():  # exalbctl explain names the same refusal
        lab.wait_explained(name, {1: reason})
    lab.wait_explained("web", {1: ""})


@pytest.mark.parametrize("kind", KINDS)
def test_deleting_every_assignments_configmap_withdraws_nothing(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = one_node(lab, router, kind, neighbors=2)
    lab.add_node(2, start=False)
    lab.set_endpoints("web", {1: True})
    lab.set_endpoints("api", {1: True})
    entries = [lab.assignment("web", WEB), lab.assignment("api", "198.51.100.63")]
    lab.set_assignments(entries)
    routes = {f"{WEB}/32": {lab.hop(1)}, "198.51.100.63/32": {lab.hop(1)}}
    r.wait_rib("both", lambda rib: set(routes) <= set(rib), timeout=30)
    updates = settled_updates(r, lab.source(1))

    delete_assignments(lab)  # no allocator runs: nothing will write them again
    wait_for("stale contract", lambda: sample(lab.metrics(1), STALE) == 1.0, 20)
    hold(r, routes, set(), WINDOW)
    assert r.updates_received(lab.source(1)) == updates

    # A cold start has no last good state: node 2 announces nothing, and says why.
    lab.start_announcer(2)
    r.wait_session(lab.source(2))
    hold(r, routes, set(), WINDOW)
    wait_for(
        "node 2 says it announces nothing",
        lambda: "no last good state" in lab.node(2).proc.tail(200),  # type: ignore[union-attr]
        10,
    )

    # Written again with the same entries: still nothing sent, and no longer stale.
    lab.set_assignments(entries)
    wait_for("contract readable", lambda: sample(lab.metrics(1), STALE) == 0.0, 20)
    both = {lab.hop(1), lab.hop(2)}
    r.wait_rib(
        "node 2 announces too",
        lambda rib: all({p.next_hop for p in rib.get(x, [])} == both for x in routes),
    )
    assert r.updates_received(lab.source(1)) == updates


@pytest.fixture
def allocator_rbac(kube: client.ApiClient, lab: Lab) -> Iterator[None]:
    suffix = f"-{lab.namespace}-alloc"
    apply_rbac(kube, lab.namespace, suffix)
    yield
    delete_rbac(kube, suffix)


@pytest.mark.parametrize("kind", KINDS)
def test_the_allocator_rebuilds_deleted_configmaps_without_a_withdraw(
    lab: Lab,
    router: RouterFactory,
    kind: str,
    control_plane: ControlPlane,
    allocator_rbac: None,
    tmp_path: Path,
) -> None:
    lab.add_pool("public", ["198.51.100.64/28"])
    r = one_node(lab, router, kind)
    running: list[AllocatorProc] = []

    def allocator() -> AllocatorProc:
        running.append(start_allocator(control_plane, lab.namespace, tmp_path, "alloc-a"))
        return running[-1]

    try:
        alloc = allocator()
        ips = [_service_ip(lab, name) for name in ("web", "api")]
        for name in ("web", "api"):
            lab.set_endpoints(name, {1: True})
        routes = {f"{ip}/32": {lab.hop(1)} for ip in ips}
        r.wait_rib("both", lambda rib: set(routes) <= set(rib), timeout=30)
        sent = nothing_sent(r, lab.source(1), routes)

        # The allocator stopped: the ConfigMaps deleted, nothing moves at the router.
        alloc.proc.stop()
        delete_assignments(lab)
        wait_for("stale contract", lambda: sample(lab.metrics(1), STALE) == 1.0, 20)
        hold(r, routes, set(), WINDOW)
        sent()

        # It comes back and writes them again: the router still sees nothing.
        alloc = allocator()
        wait_for("rebuilt", lambda: sample(lab.metrics(1), STALE) == 0.0, 30, on_timeout=lab.logs)
        hold(r, routes, set(), WINDOW)
        sent()

        # Deleted while it runs: it repairs them, and the router never hears of it.
        delete_assignments(lab)
        wait_for(
            "repaired",
            lambda: (
                bool(
                    lab.core.list_namespaced_config_map(
                        lab.namespace, label_selector=f"{contract.LABEL}=true"
                    ).items
                )
                and sample(lab.metrics(1), STALE) == 0.0
            ),
            30,
            on_timeout=alloc.proc.tail,
        )
        hold(r, routes, set(), WINDOW)
        sent()
    finally:
        for a in running:
            a.proc.stop()


def _service_ip(lab: Lab, name: str) -> str:
    body: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {
            "type": "LoadBalancer",
            "allocateLoadBalancerNodePorts": False,
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
    }
    lab.core.create_namespaced_service(lab.namespace, body)
    found: list[str] = []

    def got() -> bool:
        lb = lab.core.read_namespaced_service_status(name, lab.namespace).status.load_balancer
        found[:] = [i.ip for i in (lb.ingress or [])] if lb else []
        return bool(found)

    wait_for(f"{name} gets an IP", got, 30)
    return found[0]
