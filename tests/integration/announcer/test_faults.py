"""Failure behaviour with real processes: crashes, restarts, shutdown, API outage, churn."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from announcer.core import decide
from exalbctl.core.explain import SESSION_DOWN
from testbed.controlplane import ControlPlane
from testbed.lab import Lab, alive, children, same_session
from testbed.procs import wait_for
from testbed.routers import RibPath, Router
from testbed.routers.base import settle
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

IP = "198.51.100.20"
PREFIX = f"{IP}/32"


def _two_nodes(lab: Lab, router: RouterFactory, kind: str, *extra: str, **peer: object) -> Router:
    r = router(kind, lab.router_ip, 64512, lab.neighbors(2))
    lab.add_peer("tor", r, **peer)
    lab.add_node(1, extra_args=("--exabgp-spare", *extra))
    lab.add_node(2, extra_args=("--exabgp-spare", *extra))
    lab.set_endpoints("web", {1: True, 2: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2)}, timeout=30)
    lab.wait_explained("web", {1: "", 2: ""})
    return r


def _launchers_of(lab: Lab, i: int) -> tuple[int, int]:
    """(running ExaBGP, spare launcher) of node ``i``: ExaBGP is the one with an API process."""
    proc = lab.node(i).proc
    assert proc is not None
    found: list[tuple[int, int]] = []

    def both() -> bool:
        pids = children(proc.pid)
        running = [p for p in pids if children(p)]
        found[:] = [(running[0], next(p for p in pids if p != running[0]))]
        return len(pids) == 2 and len(running) == 1

    wait_for(f"node {i}: an ExaBGP and a spare launcher", both, 20)
    return found[0]


def _up_for_a_while(r: Router, peer: str) -> float:
    """The router's "up since" for ``peer``, once that is 4 s ago: routers report it to the
    second and FRR's jitters by one, so a session re-established later shows as 1.5 s apart."""
    since: list[float] = []

    def settled() -> bool:
        since[:] = [r.uptime_since(peer) or time.time()]
        return time.time() - since[0] >= 4

    wait_for(f"the session from {peer} up for 4 s", settled, 10, interval=0.5)
    return since[0]


def _exabgp_of(lab: Lab, i: int) -> int:
    """Node ``i``'s running ExaBGP (a spare launcher or not): the child with an API process."""
    proc = lab.node(i).proc
    assert proc is not None
    running: list[int] = []

    def one() -> bool:
        running[:] = [p for p in children(proc.pid) if children(p)]
        return len(running) == 1

    wait_for(f"node {i}: a running ExaBGP", one, 20)
    return running[0]


def test_killed_exabgp_is_restarted_from_the_spare_and_routes_replayed(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = _two_nodes(lab, router, kind)
    old, spare = _launchers_of(lab, 1)
    peer = lab.source(1)
    before = _up_for_a_while(r, peer)
    os.kill(old, signal.SIGKILL)
    # The spare re-establishes within a tenth of a second, often before a RIB poll could
    # see the withdrawal: the router's "up since" shows the crash dropped the session.
    wait_for(
        "the router: node 1's session re-established after the crash",
        lambda: (r.uptime_since(peer) or 0.0) - before > 1.5,
        15,
    )
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2)}, timeout=20)
    lab.wait_explained("web", {1: "", 2: ""})
    # The launcher started while the old ExaBGP ran is the new ExaBGP: no cold start.
    new, next_spare = _launchers_of(lab, 1)
    assert new == spare
    assert next_spare not in (old, spare)
    assert "exalb_announcer_exabgp_restarts_total" in lab.metrics(1)


def test_sigkilled_announcer_takes_its_routes_with_it(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = _two_nodes(lab, router, kind)
    exabgp, spare = _launchers_of(lab, 1)
    proc = lab.node(1).proc
    assert proc is not None
    start = time.monotonic()
    proc.kill()
    r.wait_next_hops(PREFIX, {lab.hop(2)}, timeout=9)  # hold time is 9 s
    assert time.monotonic() - start < 9
    wait_for("ExaBGP exits with the announcer", lambda: not alive(exabgp), 5)
    wait_for("the spare launcher exits with the announcer", lambda: not alive(spare), 5)
    if kind == "gobgp":  # the one router here whose reason the testbed reads
        # ExaBGP's SIGTERM path closes the connection without a NOTIFICATION: no Cease.
        peer = lab.source(1)
        wait_for("the router's reason", lambda: r.sessions()[peer].last_error is not None, 5)
        assert r.sessions()[peer].last_error == "read-failed"


def test_sigterm_withdraws_before_closing_with_admin_shutdown(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    # The hold gives the probe, two router CLI calls per sample (seconds each for FRR's
    # vtysh on a loaded machine), time to see the withdrawn-but-established window; the
    # budget lets the withdrawal go first however slow this shared machine is.
    r = _two_nodes(
        lab, router, kind, "--shutdown-withdraw-hold", "3", "--shutdown-withdraw-budget", "10"
    )
    peer = lab.source(1)
    samples: list[tuple[bool, bool]] = []  # (node 1's path present, node 1's session up)
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            present = lab.hop(1) in {p.next_hop for p in r.rib().get(PREFIX, [])}
            up = r.sessions()[peer].established
            samples.append((present, up))

    t = threading.Thread(target=probe)
    t.start()
    try:
        # A sample read before the stop: a slow CLI call started earlier may answer later.
        wait_for("a first sample", lambda: len(samples) >= 1, 30, interval=0.05)
        assert lab.stop_announcer(1) == 0
        wait_for("router sees node 1 down", lambda: bool(samples) and not samples[-1][1], 15)
    finally:
        stop.set()
        t.join()
    assert samples[0] == (True, True)
    # The path was gone while the session was still established: an explicit withdraw.
    assert (False, True) in samples, samples
    r.wait_next_hops(PREFIX, {lab.hop(2)})
    err = (r.sessions()[peer].last_error or "").lower()
    assert "administrative" in err and "shutdown" in err, err
    lab.wait_explained("web", {2: ""})


CEASED_AT_ONCE = "shutdown: withdrawal budget spent; the Cease withdraws the rest"
CEASED_AFTER_ALL = "shutdown: every route withdrawn; Cease"


def test_with_no_withdrawal_budget_the_cease_alone_takes_every_route_away(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    # What a spent budget relies on: a Cease makes the router drop the session's routes.
    r = _two_nodes(lab, router, kind, "--shutdown-withdraw-budget", "0")
    peer = lab.source(1)
    assert lab.stop_announcer(1) == 0
    r.wait_next_hops(PREFIX, {lab.hop(2)}, timeout=10)
    proc = lab.node(1).proc
    assert proc is not None
    assert CEASED_AT_ONCE in proc.log.read_text()
    err = (r.sessions()[peer].last_error or "").lower()
    if kind == "bird":
        # BIRD has reported the Cease, or the reset of the connection ExaBGP closes right
        # after it (seen once at load 40): either way the routes went with the session.
        assert "shutdown" in err or "connection reset" in err, err
    else:
        assert "administrative" in err and "shutdown" in err, err


def test_with_graceful_restart_every_route_is_withdrawn_whatever_the_budget(
    lab: Lab, router: RouterFactory
) -> None:
    # ExaBGP closes a graceful-restart session without a Cease, and a router helping it
    # would keep what was not withdrawn: no budget cuts the withdrawals short.
    r = _two_nodes(
        lab, router, "gobgp", "--shutdown-withdraw-budget", "0", enableGracefulRestart=True
    )
    assert lab.stop_announcer(1) == 0
    r.wait_next_hops(PREFIX, {lab.hop(2)}, timeout=10)
    proc = lab.node(1).proc
    assert proc is not None
    log = proc.log.read_text()
    assert CEASED_AFTER_ALL in log and CEASED_AT_ONCE not in log


def test_router_restart_gets_the_full_state_again(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = _two_nodes(lab, router, kind)
    lab.set_assignments([lab.assignment("web", IP), lab.assignment("api", "198.51.100.21")])
    lab.set_endpoints("api", {2: True})
    r.wait_next_hops("198.51.100.21/32", {lab.hop(1), lab.hop(2)})
    r.restart()
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2)}, timeout=30)
    r.wait_next_hops("198.51.100.21/32", {lab.hop(1), lab.hop(2)})
    lab.wait_explained("api", {1: "", 2: ""})  # Cluster policy: node 1 serves it too


def test_change_while_the_peer_is_down(lab: Lab, router: RouterFactory, kind: str) -> None:
    r = _two_nodes(lab, router, kind)
    r.stop()
    lab.set_assignments([lab.assignment("web", IP), lab.assignment("new", "198.51.100.22")])
    lab.set_endpoints("new", {1: True})
    lab.set_endpoints("web", {1: True, 2: False})
    lab.set_assignments([lab.assignment("new", "198.51.100.22")])  # web is deleted
    time.sleep(1)
    # The decision announces "new" from both nodes; the session down is the failing check.
    lab.wait_explained("new", {1: SESSION_DOWN, 2: SESSION_DOWN}, timeout=20)
    r.start()
    r.wait_next_hops("198.51.100.22/32", {lab.hop(1), lab.hop(2)}, timeout=30)
    r.wait_absent(PREFIX)
    lab.wait_explained("new", {1: "", 2: ""})


def test_fifty_services_come_and_go_without_a_session_reset(
    lab: Lab, router: RouterFactory, kind: str
) -> None:
    r = _two_nodes(lab, router, kind)
    # FRR reports uptime in whole seconds: a session younger than that could read as
    # "up since" a moment after the churn began, like a reset would.
    settle(2)
    before = {i: r.uptime_since(lab.source(i)) for i in (1, 2)}
    assert all(before.values())
    churn_started = time.time()
    services = [lab.assignment("web", IP)]
    for n in range(50):
        services.append(lab.assignment(f"s{n}", f"198.51.100.{n + 101}"))
        lab.set_assignments(services)
    lab.set_endpoints("web", {1: True, 2: True})
    for n in range(50):
        lab.set_endpoints(f"s{n}", {1 + n % 2: True})
    hops = {lab.hop(1), lab.hop(2)}
    r.wait_rib(
        "all 50 services via both nodes",
        lambda rib: all(
            {p.next_hop for p in rib.get(f"198.51.100.{n + 101}/32", [])} == hops for n in range(50)
        ),
        timeout=30,
    )
    while len(services) > 1:
        services.pop()
        lab.set_assignments(services)
    r.wait_rib("only web left", lambda rib: set(rib) == {PREFIX}, timeout=30)
    lab.wait_explained("web", {1: "", 2: ""})
    _, gone = lab.explain("s0")
    assert gone["nodes"] == [] and "no assignment published" in gone["problems"][0]
    for i in (1, 2):
        since = r.uptime_since(lab.source(i))
        assert same_session(before[i], since, churn_started), (before[i], since)


def test_api_server_outage_keeps_routes_and_catches_up(
    lab: Lab, router: RouterFactory, control_plane: ControlPlane
) -> None:
    r = _two_nodes(lab, router, "gobgp")
    control_plane.stop_apiserver()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert {p.next_hop for p in r.rib().get(PREFIX, [])} == {lab.hop(1), lab.hop(2)}
            time.sleep(1)
    finally:
        control_plane.start_apiserver()
    lab.set_endpoints("web", {1: True, 2: True})
    lab.set_assignments([lab.assignment("web", IP, policy="Local")])
    lab.set_endpoints("web", {2: True})
    # Each informer's next retry may be up to the 30 s backoff ceiling away.
    r.wait_next_hops(PREFIX, {lab.hop(2)}, timeout=60)
    lab.wait_explained("web", {1: decide.NO_LOCAL_ENDPOINTS, 2: ""})


def test_sigterm_with_drain_announces_graceful_shutdown_first(
    lab: Lab, router: RouterFactory
) -> None:
    r = _two_nodes(lab, router, "gobgp", "--graceful-shutdown-drain", "2")
    proc = lab.node(1).proc
    assert proc is not None
    proc.signal(signal.SIGTERM)

    def drained(rib: dict[str, list[RibPath]]) -> bool:
        paths = {p.next_hop: p for p in rib.get(PREFIX, [])}
        return lab.hop(1) in paths and "65535:0" in paths[lab.hop(1)].communities

    r.wait_rib("node 1's path carries GRACEFUL_SHUTDOWN (RFC 8326)", drained, timeout=5)
    assert "65535:0" not in {
        c for p in r.rib()[PREFIX] if p.next_hop == lab.hop(2) for c in p.communities
    }
    r.wait_next_hops(PREFIX, {lab.hop(2)}, timeout=10)
    assert proc.popen.wait(10) == 0
