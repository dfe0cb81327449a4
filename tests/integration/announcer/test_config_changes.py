"""Config changes: a peer change touches only that peer; bad ConfigMaps keep the last good."""

from __future__ import annotations

import itertools
import socket
import time

import pytest
from kubernetes.client import ApiException

import exalb.assignments as contract
from announcer.core import decide
from testbed.lab import Lab, same_session
from testbed.procs import wait_for
from testbed.routers.base import settle
from tests.conftest import RouterFactory

from .test_faults import _exabgp_of
from .test_scenarios import metric

pytestmark = pytest.mark.integration

IP = "198.51.100.30"
PREFIX = f"{IP}/32"


def test_a_peer_change_restarts_only_that_peer(lab: Lab, router: RouterFactory) -> None:
    a = router("gobgp", lab.router_ip, 64512, lab.neighbors(1))
    b = router("gobgp", f"127.1.{lab.lab_id}.2", 64514, lab.neighbors(1))
    lab.add_peer("a", a)
    lab.add_peer("b", b)
    lab.add_node(1)
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    a.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    b.wait_next_hops(PREFIX, {lab.hop(1)})
    since_a = a.uptime_since(lab.source(1))
    since_b = b.uptime_since(lab.source(1))
    changed = time.time()
    time.sleep(1.1)  # so that a restarted session shows a later "up since"

    lab.patch_peer("b", {"holdTime": "12s", "description": "changed"})
    b.wait_rib("b's session restarted", lambda _: b.uptime_since(lab.source(1)) != since_b)
    b.wait_next_hops(PREFIX, {lab.hop(1)})
    assert same_session(since_a, a.uptime_since(lab.source(1)), changed)
    up_b = 'exalb_announcer_bgp_session_up{peer="b"} 1.0'
    wait_for("b's restarted session reported up", lambda: up_b in lab.metrics(1), 10)

    lab.delete_peer("b")
    b.wait_absent(PREFIX)
    # A deleted peer is no session down: none of its series is left to alert on.
    wait_for("b's series gone", lambda: 'peer="b"' not in lab.metrics(1), 10)
    settle(1)
    assert same_session(since_a, a.uptime_since(lab.source(1)), changed)
    assert {p.next_hop for p in a.rib()[PREFIX]} == {lab.hop(1)}
    served = lab.metrics(1)
    assert 'exalb_announcer_bgp_session_up{peer="a"} 1.0' in served
    assert 'peer="b"' not in served


def _full_passes(lab: Lab, i: int) -> float:
    line = 'exalb_announcer_reconciles_total{kind="full"} '
    found = [x for x in lab.metrics(i).splitlines() if x.startswith(line)]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def test_a_selector_edit_keeps_the_session_a_holdtime_edit_restarts_it(
    lab: Lab, router: RouterFactory
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(1))
    lab.add_peer("tor", r, nodeSelectors=[{"matchLabels": {"rack": "r1"}}])
    lab.add_node(1, {"rack": "r1", "zone": "z1"})
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    since = r.uptime_since(lab.source(1))
    exabgp = _exabgp_of(lab, 1)
    changed = time.time()
    time.sleep(1.1)  # so that a restarted session shows a later "up since"

    passes = _full_passes(lab, 1)
    lab.patch_peer("tor", {"nodeSelectors": [{"matchLabels": {"zone": "z1"}}]})
    wait_for("the announcer saw the selector edit", lambda: _full_passes(lab, 1) > passes, 10)
    settle(2)
    assert same_session(since, r.uptime_since(lab.source(1)), changed)
    assert _exabgp_of(lab, 1) == exabgp  # the same process: nothing was restarted
    assert {p.next_hop for p in r.rib()[PREFIX]} == {lab.hop(1)}

    lab.patch_peer("tor", {"holdTime": "12s"})
    r.wait_rib("the session restarted", lambda _: r.uptime_since(lab.source(1)) != since)
    r.wait_next_hops(PREFIX, {lab.hop(1)})
    assert _exabgp_of(lab, 1) != exabgp


def test_bad_assignment_configmaps_keep_the_last_good_state(
    lab: Lab, router: RouterFactory
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(1))
    lab.add_peer("tor", r)
    lab.add_node(1)
    lab.set_endpoints("web", {1: True})
    lab.set_endpoints("api", {1: True})
    good = [lab.assignment("web", IP), lab.assignment("api", "198.51.100.31")]
    lab.set_assignments(good)
    r.wait_rib("both", lambda rib: {PREFIX, "198.51.100.31/32"} <= set(rib), timeout=30)

    # A newer schema: keep announcing what we had, and say so in a metric.
    lab.set_assignment_data({contract.SCHEMA_KEY: "99"})
    settle(2)
    assert {PREFIX, "198.51.100.31/32"} <= set(r.rib())
    assert metric(lab.metrics(1), "exalb_announcer_assignments_stale") == 1.0

    # One malformed entry: only that Service is skipped.
    data = contract.layout({a.key: contract.encode(a) for a in good}, 1)[0]
    data[good[1].key] = "{not json"
    lab.set_assignment_data(data)
    r.wait_absent("198.51.100.31/32")
    assert PREFIX in r.rib()
    text = lab.metrics(1)
    assert metric(text, "exalb_announcer_assignments_stale") == 0.0
    assert metric(text, "exalb_announcer_malformed_assignment_entries") == 1.0
    proc = lab.node(1).proc
    assert proc is not None and proc.alive()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"holdTime": "2s"}, "holdTime must be 0 or at least 3s"),
        ({"peerAddress": "not-an-ip"}, "peerAddress must be an IP address"),
        ({"routerID": "2001:db8::1"}, "routerID must be an IPv4 address"),
        ({"sourceAddress": "2001:db8::1"}, "sourceAddress and peerAddress must be of the same"),
        ({"password": "a", "passwordSecret": {"name": "s"}}, "mutually exclusive"),
        ({"peerASN": 64513, "ebgpMultiHop": True}, "ebgpMultiHop is meaningless"),
        ({"keepaliveTime": "5s"}, "keepaliveTime must be holdTime/3"),
        ({"myASN": 0}, "myASN"),
    ],
)
def test_bgppeer_validation(lab: Lab, spec: dict[str, object], message: str) -> None:
    body = {
        "apiVersion": "exalb.io/v1alpha1",
        "kind": "BGPPeer",
        "metadata": {"name": "bad"},
        "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "192.0.2.1", **spec},
    }
    with pytest.raises(ApiException) as err:
        lab.custom.create_namespaced_custom_object(
            "exalb.io", "v1alpha1", lab.namespace, "bgppeers", body
        )
    assert err.value.status == 422
    assert message in str(err.value.body), err.value.body


def test_bgppeer_defaults_and_graceful_restart_is_immutable(lab: Lab) -> None:
    lab.custom.create_namespaced_custom_object(
        "exalb.io",
        "v1alpha1",
        lab.namespace,
        "bgppeers",
        {
            "apiVersion": "exalb.io/v1alpha1",
            "kind": "BGPPeer",
            "metadata": {"name": "ok"},
            "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "192.0.2.1"},
        },
    )
    obj = lab.custom.get_namespaced_custom_object(
        "exalb.io", "v1alpha1", lab.namespace, "bgppeers", "ok"
    )
    assert obj["spec"]["peerPort"] == 179
    with pytest.raises(ApiException) as err:
        lab.patch_peer("ok", {"enableGracefulRestart": True})
    assert "cannot be changed" in str(err.value.body)


@pytest.mark.parametrize("connect_time", [None, "2s"])
def test_connect_time_is_the_interval_between_connection_attempts(
    lab: Lab, connect_time: str | None
) -> None:
    """connectTime (RFC 4271 ConnectRetry) replaces ExaBGP's growing back-off (1, 2, 3... s).

    The peer here is a bare TCP listener that accepts and at once closes each
    connection, so every attempt fails. ExaBGP makes its attempts in rounds (a
    second connection follows the first within a fraction of a second); what the
    timer sets is the time between rounds.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((lab.router_ip, 0))
    listener.listen(16)
    listener.settimeout(20)
    port = listener.getsockname()[1]
    spec = {"peerASN": 64512, "peerAddress": lab.router_ip, "peerPort": port}
    if connect_time:
        spec["connectTime"] = connect_time
    lab.add_peer("tor", None, **spec)
    lab.add_node(1)  # starts its announcer
    rounds: list[float] = []
    try:
        while len(rounds) < 5:
            conn, _ = listener.accept()
            now = time.monotonic()
            conn.close()
            if not rounds or now - rounds[-1] > 0.7:
                rounds.append(now)
    finally:
        listener.close()
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(rounds)]
    if connect_time:
        assert all(1.5 <= g <= 2.7 for g in gaps), gaps
    else:
        assert gaps[-1] >= gaps[0] + 2, gaps  # ExaBGP's own back-off grows


def test_announce_delay_holds_routes_back_after_the_node_turns_ready(
    lab: Lab, router: RouterFactory
) -> None:
    """--announce-delay (metallb#496): nothing is announced until kube-proxy had time."""
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(1))
    lab.add_peer("tor", r)
    lab.add_node(1, ready=False, extra_args=["--announce-delay", "4"])
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_session(lab.source(1))
    settle(1.0)
    assert PREFIX not in r.rib()
    lab.wait_explained("web", {1: decide.NODE_NOT_READY})
    became_ready = time.time()
    lab.set_node_status(1, ready=True, since=became_ready)
    # explain decides with the node's own --announce-delay, as its announcer reports it.
    assert lab.wait_explained("web", {1: decide.NODE_READY_DELAY}, timeout=3)
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=15)
    # The API keeps whole seconds of lastTransitionTime: the delay may end up to 1 s early.
    assert time.time() - int(became_ready) >= 4.0
    lab.wait_explained("web", {1: ""})
