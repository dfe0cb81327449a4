"""BGPPeer conditions on the real apiserver, written by the allocator under its own RBAC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.procs import free_port, wait_for
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


def _wait(
    cluster: Cluster, type_: str, status: str, reason: str, timeout: float = 15
) -> dict[str, Any]:
    wait_for(
        f"{type_}={status}/{reason}",
        lambda: (
            (_conditions(cluster).get(type_) or {}).get("reason") == reason
            and _conditions(cluster)[type_]["status"] == status
        ),
        timeout,
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


@pytest.fixture
def lab(
    control_plane: ControlPlane, kube: client.ApiClient, exalb_ns: str, tmp_path: Path
) -> Iterator[Lab]:
    """Real announcers in the allocator's namespace, under the chart's announcer RBAC."""
    the_lab = Lab(control_plane, kube, exalb_ns, tmp_path)
    the_lab.install_rbac()  # also creates the BGP secrets namespace
    yield the_lab
    print(the_lab.logs())  # pytest shows it only when the test failed
    the_lab.close()


def test_a_missing_password_secret_shows_as_unusable_on_the_nodes_named(
    cluster: Cluster, start_allocator: StartAllocator, lab: Lab, namespace: str
) -> None:
    """The end-to-end signal: the announcer's refusal, through its BGPSessionStatus, on the peer.

    Nothing listens at the peer's address: once the Secret exists the announcer's ExaBGP
    just retries its connection; usability does not wait for the session.
    """
    lab.add_peer(
        "tor",
        None,
        peerASN=64512,
        peerAddress=lab.router_ip,
        peerPort=free_port(lab.router_ip),
        passwordSecret={"name": "tor-md5"},
        nodeSelectors=[{"matchLabels": {RACK: namespace}}],
    )
    start_allocator()
    _wait(cluster, "Usable", "Unknown", "NotReported")

    started = time.monotonic()
    status_interval = ["--status-interval", "0.5"]
    lab.add_node(1, labels={RACK: namespace}, extra_args=status_interval)
    lab.add_node(2, labels={RACK: "elsewhere"}, extra_args=status_interval)  # not selected
    unusable = _wait(cluster, "Usable", "False", "UnusableOnNodes", timeout=30)
    reported_after = time.monotonic() - started
    assert unusable["message"] == (
        f"{lab.node(1).name}: passwordSecret 'tor-md5' is missing from namespace "
        f"'{lab.bgp_secrets_namespace}' or has no 'password' key"
    )
    print(f"Usable=False {reported_after:.1f} s after the announcers started")

    lab.add_secret("tor-md5", "md5-pw")
    fixed_at = time.monotonic()
    usable = _wait(cluster, "Usable", "True", "Usable")
    print(f"Usable=True {time.monotonic() - fixed_at:.1f} s after the Secret was created")
    assert usable["message"] == "usable on the 1 selected nodes that reported"
    assert usable["lastTransitionTime"] >= unusable["lastTransitionTime"]
    assert not lab.session_status(2)["unusablePeers"]  # type: ignore[index]
