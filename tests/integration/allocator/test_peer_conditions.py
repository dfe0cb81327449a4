"""BGPPeer conditions on the real apiserver, written by the allocator under its own RBAC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from testbed.procs import wait_for
from tests.integration.allocator.conftest import GROUP, VERSION, Cluster, StartAllocator

pytestmark = pytest.mark.integration

RACK = "exalb.io/test-rack"


@pytest.fixture
def nodes(cluster: Cluster, namespace: str) -> Iterator[list[str]]:
    """Names of the Nodes a test creates (cluster-scoped: deleted afterwards)."""
    created: list[str] = []
    yield created
    for name in created:
        try:
            cluster.core.delete_node(name)
        except client.ApiException:
            pass


def _peer(cluster: Cluster) -> dict[str, Any]:
    return dict(
        cluster.custom.get_namespaced_custom_object(
            GROUP, VERSION, cluster.exalb_ns, "bgppeers", "tor"
        )
    )


def _conditions(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (_peer(cluster).get("status") or {}).get("conditions") or []}


def _wait(cluster: Cluster, type_: str, status: str, reason: str) -> dict[str, Any]:
    wait_for(
        f"{type_}={status}/{reason}",
        lambda: (
            (_conditions(cluster).get(type_) or {}).get("reason") == reason
            and _conditions(cluster)[type_]["status"] == status
        ),
        15,
        on_timeout=lambda: f"conditions: {_conditions(cluster)}",
    )
    return _conditions(cluster)[type_]


def _node(cluster: Cluster, nodes: list[str], name: str, rack: str) -> None:
    cluster.core.create_node({"metadata": {"name": name, "labels": {RACK: rack}}})
    nodes.append(name)


def test_each_condition_turns_false_then_true(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str, nodes: list[str]
) -> None:
    ns = cluster.exalb_ns
    spec = {
        "myASN": 64513,
        "peerASN": 64512,
        "peerAddress": "192.0.2.1",
        "passwordSecret": {"name": "tor-md5"},
        "nodeSelectors": [{"matchLabels": {RACK: namespace}}],
    }
    cluster.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        "bgppeers",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BGPPeer",
            "metadata": {"name": "tor"},
            "spec": spec,
        },
    )
    alloc = start_allocator()

    assert _wait(cluster, "Valid", "True", "Valid")["observedGeneration"] == 1
    _wait(cluster, "NodesSelected", "False", "NoNodesSelected")

    _node(cluster, nodes, f"{namespace}-a", namespace)
    _node(cluster, nodes, f"{namespace}-other", "elsewhere")
    selected = _wait(cluster, "NodesSelected", "True", "NodesSelected")
    assert selected["message"].startswith("nodeSelectors match 1 of ")

    # A second matching node changes the message, not the status: the transition time holds.
    _node(cluster, nodes, f"{namespace}-b", namespace)
    wait_for(
        "2 nodes selected",
        lambda: "match 2 of" in _conditions(cluster)["NodesSelected"]["message"],
        15,
        on_timeout=lambda: f"conditions: {_conditions(cluster)}",
    )
    after = _conditions(cluster)["NodesSelected"]
    assert after["lastTransitionTime"] == selected["lastTransitionTime"]

    # Nothing changed: nothing is written (a Node status update is not a label change).
    settled = _peer(cluster)["metadata"]["resourceVersion"]
    cluster.core.patch_node(f"{namespace}-a", {"metadata": {"annotations": {"touched": "yes"}}})
    time.sleep(2)
    assert _peer(cluster)["metadata"]["resourceVersion"] == settled

    for name in list(nodes):
        cluster.core.delete_node(name)
    _wait(cluster, "NodesSelected", "False", "NoNodesSelected")

    assert (alloc.metric("exalb_allocator_api_writes_total", kind="BGPPeer") or 0) >= 4
    assert not alloc.metric("exalb_allocator_api_write_errors_total", kind="BGPPeer")
