"""The announcers' word against the code's: Events on the Service, stale and missing announcers.

Real announcers, ExaBGP, GoBGP and the real apiserver. ``exalbctl explain`` is checked
in every scenario of this directory (``Lab.wait_explained``); here are the cases where
the announcer and the code disagree, and the Events that tell the story.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from kubernetes import client

from announcer.core import decide
from announcer.core.transitions import ANNOUNCED, WITHDRAWN
from testbed.lab import GROUP, VERSION, Lab
from testbed.procs import wait_for
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

IP = "198.51.100.30"
PREFIX = f"{IP}/32"
INTERVAL = 3.0  # --service-event-interval in the rate-limit test


def told(lab: Lab, service: str) -> dict[str, list[tuple[str, int, str]]]:
    """Node name -> its (reason, count, message) Announced/Withdrawn Events, oldest first."""
    items = lab.core.list_namespaced_event(
        lab.namespace, field_selector=f"involvedObject.name={service}"
    ).items
    out: dict[str, list[tuple[str, int, str, Any]]] = {}
    for e in items:
        if e.reason in (ANNOUNCED, WITHDRAWN):
            row = (e.reason, e.count or 1, e.message, e.last_timestamp)
            out.setdefault(e.source.host, []).append(row)
    return {node: [r[:3] for r in sorted(rows, key=lambda r: r[3])] for node, rows in out.items()}


def tells(lab: Lab, service: str, i: int) -> int:
    """How many Announced/Withdrawn Events node ``i`` wrote on ``service``, counts included."""
    return sum(count for _, count, _ in told(lab, service).get(lab.node(i).name, []))


def last_told(lab: Lab, service: str, i: int) -> str | None:
    rows = told(lab, service).get(lab.node(i).name, [])
    return rows[-1][0] if rows else None


def test_events_tell_each_node_starting_and_stopping_at_most_once_per_interval(
    lab: Lab, router: RouterFactory
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(2))
    lab.add_peer("tor", r)
    for i in (1, 2):
        lab.add_node(i, extra_args=["--service-event-interval", str(INTERVAL)])
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP, policy="Local")])
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    wait_for("node 1 tells it announces", lambda: last_told(lab, "web", 1) == ANNOUNCED, 10)
    assert last_told(lab, "web", 2) is None  # node 2 never announced it: nothing to tell
    (_, _, message) = told(lab, "web")[lab.node(1).name][-1]
    assert message == f"node {lab.node(1).name} announces {IP}"

    lab.set_endpoints("web", {2: True})
    r.wait_next_hops(PREFIX, {lab.hop(2)})
    wait_for("node 1 tells it withdrew", lambda: last_told(lab, "web", 1) == WITHDRAWN, 10)
    wait_for("node 2 tells it announces", lambda: last_told(lab, "web", 2) == ANNOUNCED, 10)
    (_, _, message) = told(lab, "web")[lab.node(1).name][-1]
    assert message.endswith(f"no longer announces {IP}: {decide.NO_LOCAL_ENDPOINTS}"), message
    time.sleep(INTERVAL)  # both may tell at once again

    # Twelve flips in 2.4 s, ending where they started: a flood without the rate limit.
    before = {i: tells(lab, "web", i) for i in (1, 2)}
    flips_started = time.monotonic()
    for n in range(12):
        lab.set_endpoints("web", {1: True} if n % 2 == 0 else {2: True})
        time.sleep(0.2)
    lab.set_endpoints("web", {2: True})
    flipped_for = time.monotonic() - flips_started
    r.wait_next_hops(PREFIX, {lab.hop(2)})
    # The last told state is the final one, at most one interval late.
    lab.wait_explained("web", {1: decide.NO_LOCAL_ENDPOINTS, 2: ""}, timeout=INTERVAL + 5)
    time.sleep(INTERVAL + 1)  # anything still held back has been told by now
    assert last_told(lab, "web", 1) == WITHDRAWN
    assert last_told(lab, "web", 2) == ANNOUNCED
    most = int(flipped_for // INTERVAL) + 2  # one at once, then one per interval and the last
    for i in (1, 2):
        assert tells(lab, "web", i) - before[i] <= most, (i, told(lab, "web"))

    # A restarted announcer tells again what it announces, on the Event its predecessor wrote.
    announced = tells(lab, "web", 2)
    lab.stop_announcer(2)
    lab.start_announcer(2, ["--service-event-interval", str(INTERVAL)])
    wait_for("the new process tells it", lambda: tells(lab, "web", 2) > announced, 20)
    assert last_told(lab, "web", 2) == ANNOUNCED


def test_explain_names_a_stale_announcer_and_a_missing_one(
    lab: Lab, router: RouterFactory, kube: client.ApiClient
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(2))
    lab.add_peer("tor", r)
    for i in (1, 2):
        lab.add_node(i)
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2)}, timeout=30)
    lab.wait_explained("web", {1: "", 2: ""})

    # Node 2's announcer is frozen and misses its node turning NotReady: it still announces.
    proc = lab.node(2).proc
    assert proc is not None
    proc.signal(signal.SIGSTOP)
    try:
        lab.set_node_status(2, ready=False)

        def stale() -> bool:
            code, data = lab.explain("web")
            row = lab.explained_node(data, 2)
            return (
                code == 1
                and row["check"] == decide.NODE_NOT_READY
                and row["announcer"] == "stale"
                and "it reports the node as eligible" in row["announcerDetail"]
                and any("its announcer is stale" in p for p in data["problems"])
            )

        wait_for("explain calls node 2's announcer stale", stale, 10)
        assert {p.next_hop for p in r.rib()[PREFIX]} == {lab.hop(1), lab.hop(2)}
    finally:
        proc.signal(signal.SIGCONT)
    r.wait_next_hops(PREFIX, {lab.hop(1)})
    lab.wait_explained("web", {1: "", 2: decide.NODE_NOT_READY})

    # No announcer on node 2 any more, and no status: the code would announce from it.
    lab.stop_announcer(2)
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        GROUP, VERSION, lab.namespace, "bgpsessionstatuses", lab.node(2).name
    )
    lab.set_node_status(2)

    def missing() -> bool:
        code, data = lab.explain("web")
        row = lab.explained_node(data, 2)
        return code == 1 and row["announces"] and row["announcer"] == "notRunning"

    wait_for("explain says node 2 runs no announcer", missing, 10)
