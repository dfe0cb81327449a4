"""``dualStackAddressFamily``: IPv6 Service IPs over an IPv4 session, asserted at FRR.

The simulated nodes are dual-stack (an InternalIP of each family), their sessions
run over 127/8. Without the field the /128 stays off the session; with it, FRR
holds the /128 from each node's IPv4 session with the node's IPv6 address as
next hop. The bed's dual-stack nodes (tests/realnode/test_dualstack.py) run the
same over real IPv6 links and IPv6 sessions.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from testbed.lab import Lab
from testbed.procs import wait_for
from testbed.routers.frr import Frr
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

V4, V6 = "198.51.100.20", "2001:db8:5::20"


def _paths(r: Frr, prefix: str) -> set[tuple[str | None, str]]:
    return {(p.peer, p.next_hop) for p in r.paths(prefix)}


def _wait_paths(r: Frr, prefix: str, expected: set[tuple[str, str]]) -> None:
    wait_for(
        f"FRR's paths to {prefix} == {sorted(expected)}",
        lambda: _paths(r, prefix) == expected,
        timeout=30,
        interval=0.2,
        on_timeout=lambda: f"FRR has {sorted(map(str, _paths(r, prefix)))}",
    )


def test_one_ipv4_session_carries_the_128_once_the_peer_asks(
    lab: Lab, router: RouterFactory
) -> None:
    r = router("frr", lab.router_ip, 64512, lab.neighbors(2))
    assert isinstance(r, Frr)
    lab.add_peer("tor", r)
    for i in (1, 2):
        lab.add_node(i)
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([replace(lab.assignment("web", V4), ips=(V4, V6))])
    v4_paths = {(lab.source(i), lab.hop(i)) for i in (1, 2)}
    _wait_paths(r, f"{V4}/32", v4_paths)
    assert _paths(r, f"{V6}/128") == set(), "an IPv4-only session carried IPv6"

    lab.patch_peer("tor", {"dualStackAddressFamily": True})  # restarts each node's session
    _wait_paths(r, f"{V6}/128", {(lab.source(i), lab.hop_v6(i)) for i in (1, 2)})
    _wait_paths(r, f"{V4}/32", v4_paths)

    lab.patch_peer("tor", {"dualStackAddressFamily": False})
    wait_for("the /128 withdrawn", lambda: not _paths(r, f"{V6}/128"), timeout=30, interval=0.2)
    _wait_paths(r, f"{V4}/32", v4_paths)


MANY = 300  # IPv6 Services, one /128 each


def test_many_ipv6_routes_share_updates_and_sigterm_withdraws_each_one(
    lab: Lab, router: RouterFactory
) -> None:
    """The launcher's group-ipv6 fix at a router: a few UPDATEs each way, not one a route.

    On SIGTERM every /128 is withdrawn explicitly before the Cease (the announcer reads
    each withdrawal from the UPDATEs ExaBGP sends), so the log says so and FRR, which
    counts the UPDATEs it received, holds none of the routes after.
    """
    r = router("frr", lab.router_ip, 64512, lab.neighbors(1))
    assert isinstance(r, Frr)
    lab.add_peer("tor", r, dualStackAddressFamily=True)
    lab.add_node(1)
    names = [f"v6-{i}" for i in range(MANY)]
    for name in names:
        lab.set_endpoints(name, {1: True})
    peer = lab.source(1)
    before = r.updates_received(peer)
    lab.set_assignments([lab.assignment(n, f"2001:db8:5::{i + 1:x}") for i, n in enumerate(names)])
    wait_for(f"FRR accepted {MANY} /128s", lambda: r.accepted_ipv6(peer) == MANY, 60)
    announced = r.updates_received(peer) - before
    assert announced <= 10, f"{announced} UPDATEs announced {MANY} IPv6 routes"

    before = r.updates_received(peer)
    proc = lab.node(1).proc
    assert proc is not None
    lab.stop_announcer(1)
    assert r.accepted_ipv6(peer) == 0
    log = proc.log.read_text()
    assert "shutdown: every route withdrawn; Cease" in log
    withdrew = r.updates_received(peer) - before
    assert 1 <= withdrew <= 10, f"{withdrew} UPDATEs withdrew {MANY} IPv6 routes"
