"""BGPSessionStatus objects belong to their Node: the real garbage collector removes them.

Real announcers (kube.rest client, the chart's RBAC), the real kube-apiserver and
kube-controller-manager's garbage-collector controller; nothing is simulated but the
kubelet (the Node objects are created by the test).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiException

from testbed.lab import Lab, SimNode
from testbed.procs import wait_for
from testbed.routers.base import settle
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "exalb.io", "v1alpha1", "bgpsessionstatuses"
FAST = ["--status-interval", "0.3"]
IP = "198.51.100.30"
PREFIX = f"{IP}/32"
# The collector learns about a new CRD at its next discovery resync (every 30 s).
GC_TIMEOUT = 90


def status_object(lab: Lab, name: str) -> dict[str, Any] | None:
    try:
        return dict(
            lab.custom.get_namespaced_custom_object(GROUP, VERSION, lab.namespace, PLURAL, name)
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def owners(lab: Lab, name: str) -> list[dict[str, Any]] | None:
    """The status object's owner references; None while there is no object."""
    obj = status_object(lab, name)
    return None if obj is None else list(obj["metadata"].get("ownerReferences") or [])


def node_ref(lab: Lab, name: str) -> dict[str, Any]:
    uid = lab.core.read_node(name).metadata.uid
    return {"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}


def logged(node: SimNode, text: str) -> bool:
    return node.proc is not None and text in node.proc.log.read_text(errors="replace")


def _announcing_node(lab: Lab, router: RouterFactory) -> tuple[SimNode, dict[str, Any]]:
    """One node announcing to GoBGP, its status written and owned; returns its owner ref."""
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(1))
    lab.add_peer("tor", r)
    node = lab.add_node(1, extra_args=FAST)
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    lab.wait_explained("web", {1: ""})
    ref = node_ref(lab, node.name)
    wait_for(
        "status owned by its node, announcing",
        lambda: owners(lab, node.name) == [ref] and up_sessions(lab, node.name) == 1,
        30,
    )
    return node, ref


def up_sessions(lab: Lab, name: str) -> int | None:
    obj = status_object(lab, name)
    return None if obj is None else int(obj["status"]["sessionsUp"])


def test_status_goes_with_its_node_and_comes_back_with_a_new_one(
    lab: Lab, router: RouterFactory
) -> None:
    node, first = _announcing_node(lab, router)
    lab.core.delete_node(node.name)
    wait_for("status collected", lambda: status_object(lab, node.name) is None, GC_TIMEOUT)
    settle(1)  # a few status intervals: the running announcer does not bring it back
    assert status_object(lab, node.name) is None
    # No Node and no status: explain has no node to ask, and says nothing announces.
    gone = lab.wait_explained("web", {})
    assert gone["nodes"] == [] and any("announced by no node" in p for p in gone["problems"])

    # The node comes back under the same name (a new uid): so does its status.
    lab.core.create_node({"metadata": {"name": node.name}})
    lab.set_node_status(1)
    second = node_ref(lab, node.name)
    assert second["uid"] != first["uid"]
    wait_for(
        "status owned by the new node, announcing",
        lambda: owners(lab, node.name) == [second] and up_sessions(lab, node.name) == 1,
        30,
    )
    lab.wait_explained("web", {1: ""})
    assert node.proc is not None and node.proc.alive()


def test_a_deleted_nodes_status_is_not_written_again(lab: Lab, router: RouterFactory) -> None:
    node, _ = _announcing_node(lab, router)
    # The collector may remove the object before the announcer's next write; deleting it
    # ourselves first makes that order certain. The Node's deletion then changes the
    # status (no node, no sessions), which the announcer must not re-create.
    lab.custom.delete_namespaced_custom_object(GROUP, VERSION, lab.namespace, PLURAL, node.name)
    lab.core.delete_node(node.name)
    wait_for("write skipped", lambda: logged(node, "not re-creating its session status"), 15)
    settle(1)  # a few status intervals
    assert status_object(lab, node.name) is None
    assert node.proc is not None and node.proc.alive()


def test_status_written_before_its_node_exists_gets_the_owner_later(lab: Lab) -> None:
    # An announcer whose Node is not registered yet (Lab.add_node would create it first).
    name = f"node-1-{lab.suffix}"
    node = lab.nodes[name] = SimNode(name, 1, lab.source(1), lab.hop(1), lab.hop_v6(1))
    lab.start_announcer(1, FAST)
    wait_for("status without an owner", lambda: owners(lab, name) == [], 30)

    lab.core.create_node({"metadata": {"name": name}})
    lab.set_node_status(1)
    ref = node_ref(lab, name)
    wait_for("owner added", lambda: owners(lab, name) == [ref], 30)

    lab.core.delete_node(name)
    wait_for("status collected", lambda: status_object(lab, name) is None, GC_TIMEOUT)
    assert node.proc is not None and node.proc.alive()
