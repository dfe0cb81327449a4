"""The announce/withdraw decision, end to end: real announcers, ExaBGP and router, real API."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from announcer.core import decide
from exalb.assignments import Advertisement, LabelSelector
from exalbctl.core.explain import SESSION_DOWN
from testbed.lab import Lab, same_session
from testbed.procs import wait_for
from testbed.routers import Neighbor
from testbed.routers.base import settle
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

IP = "198.51.100.10"
PREFIX = f"{IP}/32"
NO_LOCAL = decide.NO_LOCAL_ENDPOINTS


def test_cluster_ecmp_from_every_node_then_local_follows_endpoints(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = router(kind, lab.router_ip, 64512, lab.neighbors(3))
    lab.add_peer("tor", r)
    for i in (1, 2, 3):
        lab.add_node(i)
    lab.set_endpoints("web", {1: True, 2: False})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2), lab.hop(3)}, timeout=30)
    lab.wait_explained("web", {1: "", 2: "", 3: ""})

    lab.set_assignments([lab.assignment("web", IP, policy="Local")])
    r.wait_next_hops(PREFIX, {lab.hop(1)})
    lab.wait_explained("web", {1: "", 2: NO_LOCAL, 3: NO_LOCAL})
    lab.set_endpoints("web", {1: True, 2: True, 3: "terminating"})
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2), lab.hop(3)})
    lab.wait_explained("web", {1: "", 2: "", 3: ""})
    lab.set_endpoints("web", {1: False, 2: True, 3: "terminating"})
    r.wait_next_hops(PREFIX, {lab.hop(2), lab.hop(3)})
    lab.wait_explained("web", {1: NO_LOCAL, 2: "", 3: ""})
    lab.set_endpoints("web", {})
    r.wait_absent(PREFIX)
    lab.wait_explained("web", {1: NO_LOCAL, 2: NO_LOCAL, 3: NO_LOCAL})
    for i in (1, 2, 3):
        passes = {
            kind: float(line.rsplit(" ", 1)[1])
            for line in lab.metrics(i).splitlines()
            for kind in ("full", "changed")
            if line.startswith(f'exalb_announcer_reconciles_total{{kind="{kind}"}}')
        }
        # Endpoint and assignment changes re-decided just that Service, not everything.
        assert passes.get("changed", 0) >= 1 and passes.get("full", 0) >= 1, passes


def test_node_eligibility_and_selectors(lab: Lab, router: RouterFactory, kind: str) -> None:
    r = router(kind, lab.router_ip, 64512, lab.neighbors(3))
    lab.add_peer(
        "tor",
        r,
        nodeSelectors=[
            {"matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1", "r2"]}]}
        ],
    )
    lab.add_node(1, {"rack": "r1"})
    lab.add_node(2, {"rack": "r1"})
    lab.add_node(3, {"rack": "r3"})  # the peer does not select it: no session at all
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    all_up = {lab.hop(1), lab.hop(2)}
    r.wait_next_hops(PREFIX, all_up, timeout=30)
    assert lab.source(3) not in {s for s, v in r.sessions().items() if v.established}
    lab.wait_explained("web", {1: "", 2: "", 3: decide.NO_PEERS})

    lab.label_node(2, {"node.kubernetes.io/exclude-from-external-load-balancers": ""})
    r.wait_next_hops(PREFIX, {lab.hop(1)})
    lab.wait_explained("web", {1: "", 2: decide.NODE_EXCLUDED})
    lab.label_node(2, {"node.kubernetes.io/exclude-from-external-load-balancers": None})
    r.wait_next_hops(PREFIX, all_up)

    lab.set_node_status(1, network_unavailable=True)
    r.wait_next_hops(PREFIX, {lab.hop(2)})
    lab.wait_explained("web", {1: decide.NODE_NETWORK_UNAVAILABLE, 2: ""})
    lab.set_node_status(1, ready=False)
    r.wait_next_hops(PREFIX, {lab.hop(2)})
    lab.wait_explained("web", {1: decide.NODE_NOT_READY, 2: ""})
    lab.set_node_status(1)
    r.wait_next_hops(PREFIX, all_up)
    lab.wait_explained("web", {1: "", 2: ""})

    # The advertisement's own nodeSelectors narrow it further; the peer's session stays up.
    uptime = r.uptime_since(lab.source(1))
    changed_at = time.time()
    adv = Advertisement(node_selectors=(LabelSelector((("role", "edge"),)),))
    lab.label_node(2, {"role": "edge"})
    lab.set_assignments([lab.assignment("web", IP, advertisements=[adv])])
    r.wait_next_hops(PREFIX, {lab.hop(2)})
    assert same_session(uptime, r.uptime_since(lab.source(1)), changed_at)
    lab.wait_explained("web", {1: decide.NOT_OWNER, 2: "", 3: decide.NOT_OWNER})


def test_communities_and_local_pref_on_ibgp(lab: Lab, router: RouterFactory, kind: str) -> None:
    r = router(kind, lab.router_ip, lab.asn, lab.neighbors(1))  # iBGP: same ASN
    lab.add_peer("rr", r)
    lab.add_node(1)
    lab.set_endpoints("web", {1: True})
    adv = Advertisement(
        communities=("65000:100", "65000:200"), large_communities=("64512:7:9",), local_pref=250
    )
    lab.set_assignments([lab.assignment("web", IP, advertisements=[adv])])
    (path,) = r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    assert path.communities == ("65000:100", "65000:200")
    # with the large community naming the node (on by default): lab.asn:1:<its IPv4 address>
    node_id = int(ipaddress.IPv4Address(lab.hop(1)))
    assert set(path.large_communities) == {"64512:7:9", f"{lab.asn}:1:{node_id}"}
    assert path.local_pref == 250
    # explain shows the attributes the router holds, the node's large community included.
    (route,) = lab.explained_node(lab.wait_explained("web", {1: ""}), 1)["routes"]
    assert tuple(route["communities"]) == path.communities
    assert set(route["largeCommunities"]) == set(path.large_communities)
    assert (route["localPref"], route["nextHop"]) == (250, lab.hop(1))
    adv2 = Advertisement(communities=("65000:300",), local_pref=90)
    lab.set_assignments([lab.assignment("web", IP, advertisements=[adv2])])
    r.wait_rib(
        "attributes replaced",
        lambda rib: (
            [(p.communities, p.local_pref) for p in rib.get(PREFIX, [])] == [(("65000:300",), 90)]
        ),
    )


def test_end_of_rib_each_way_is_recorded_per_session(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    """The router's End-of-RIB (it sent its whole table, here none) reaches the status,
    beside ours; both belong to the session they came in, so a new session starts without."""
    # Graceful restart on both ends: FRR and GoBGP send their End-of-RIB only then.
    r = router(
        kind, lab.router_ip, 64512, [Neighbor(lab.source(1), lab.asn, graceful_restart=True)]
    )
    lab.add_peer("tor", r, enableGracefulRestart=True)
    lab.add_node(1)
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)

    def session() -> dict[str, Any]:
        """Node 1's session as ``exalbctl peers`` shows it, from its BGPSessionStatus."""
        _, data = lab.exalbctl("peers")
        return dict((data["sessions"] or [{}])[0])

    def both() -> bool:
        s = session()
        return s.get("state") == "up" and bool(s["endOfRibSent"] and s["endOfRibReceived"])

    wait_for("both End-of-RIBs recorded", both, 10)
    r.stop()
    wait_for(
        "a session gone takes its End-of-RIBs",
        lambda: session().get("state") != "up" and session()["endOfRibReceived"] == "",
        20,
    )
    r.start()
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    wait_for("the new session's End-of-RIBs", both, 10)


def test_md5_right_password_establishes_wrong_one_never(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = router(
        kind,
        lab.router_ip,
        64512,
        [Neighbor(lab.source(1), lab.asn, "right-pw"), Neighbor(lab.source(2), lab.asn, "other")],
    )
    lab.add_secret("tor-md5", "right-pw")
    lab.add_peer("tor", r, passwordSecret={"name": "tor-md5"})
    lab.add_node(1, extra_args=["--status-interval", "0.5"])
    lab.add_node(2, extra_args=["--status-interval", "0.5"])
    lab.set_endpoints("web", {1: True, 2: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    settle(3)
    # Both ends report the wrong-password session down; our per-node status says so too.
    for i, up in ((1, 1), (2, 0)):
        st = lab.session_status(i)
        assert st is not None and st["sessions"] == 1 and st["sessionsUp"] == up, st
    assert lab.session_status(1)["peers"][0]["prefixes"] == 1  # type: ignore[index]
    assert not r.sessions()[lab.source(2)].established
    assert {p.next_hop for p in r.rib()[PREFIX]} == {lab.hop(1)}
    # The decision announces from node 2 too; its session, down, is the failing check.
    lab.wait_explained("web", {1: "", 2: SESSION_DOWN})
    up = metric(lab.metrics(2), "exalb_announcer_bgp_session_up")
    assert up == 0.0
    assert metric(lab.metrics(1), "exalb_announcer_bgp_session_up") == 1.0
    for i in (1, 2):
        proc = lab.node(i).proc
        assert proc is not None
        assert "right-pw" not in proc.log.read_text()  # the password is never logged


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
