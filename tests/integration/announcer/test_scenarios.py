"""The announce/withdraw decision, end to end: real announcers, ExaBGP and router, real API."""

from __future__ import annotations

import pytest

from tests.conftest import RouterFactory

from .lab import Lab

pytestmark = pytest.mark.integration

IP = "198.51.100.10"
PREFIX = f"{IP}/32"


def test_cluster_ecmp_from_every_node_then_local_follows_endpoints(
    lab: Lab, router: RouterFactory
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(3))
    lab.add_peer("tor", r)
    for i in (1, 2, 3):
        lab.add_node(i)
    lab.set_endpoints("web", {1: True, 2: False})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2), lab.hop(3)}, timeout=30)

    lab.set_assignments([lab.assignment("web", IP, policy="Local")])
    r.wait_next_hops(PREFIX, {lab.hop(1)})
    lab.set_endpoints("web", {1: True, 2: True, 3: "terminating"})
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2), lab.hop(3)})
    lab.set_endpoints("web", {1: False, 2: True, 3: "terminating"})
    r.wait_next_hops(PREFIX, {lab.hop(2), lab.hop(3)})
    lab.set_endpoints("web", {})
    r.wait_absent(PREFIX)
