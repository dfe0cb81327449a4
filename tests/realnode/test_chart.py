"""`helm install` of charts/exalb, with the image tools/image builds, on the bed's real nodes.

What the bed's FRR router reports is the judge: its sessions and, per Service
address, the next hops of the paths it holds. The tests run in file order on
one release: install, Services, scaling and readiness, a rolling upgrade, a
switch to ``allocator.mode: deployment``, and last the uninstall.
"""

from __future__ import annotations

import itertools

import pytest
from kubernetes import client

from testbed.nodes import Bed
from testbed.procs import wait_for

from .chart import (
    ANNOUNCERS,
    CRDS,
    RELEASE,
    SYSTEM,
    addresses,
    established,
    next_hops,
    pods_by_node,
    roll_announcers,
    service,
    wait_established,
    wait_next_hops,
)
from .workloads import READY_FILE, ready_pods, web

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

ALLOCATORS = "app.kubernetes.io/instance=exalb,app.kubernetes.io/component=allocator"


def _cluster_service(bed: Bed, namespace: str) -> str:
    """A Cluster Service in front of one web pod, once every node announces it: its prefix."""
    web(bed, namespace, replicas=1)
    pods_by_node(bed, namespace, 1)
    prefix = service(bed, namespace, "web-cluster", "Cluster")
    wait_next_hops(bed, prefix, set(addresses(bed).values()))
    return prefix


def test_install_every_pod_ready_and_every_node_established_at_frr(exalb: Bed) -> None:
    pods = ready_pods(exalb, SYSTEM, ANNOUNCERS, len(exalb.nodes))
    assert {p.spec.node_name for p in pods} == set(addresses(exalb))
    for pod in pods:
        assert {c.name for c in pod.spec.containers} == {"announcer", "allocator"}
        assert all(s.ready for s in pod.status.container_statuses), pod.status
    wait_established(exalb)


def test_local_service_is_announced_by_the_nodes_with_a_ready_pod(
    exalb: Bed, namespace: str
) -> None:
    web(exalb, namespace, replicas=1)
    (node,) = pods_by_node(exalb, namespace, 1)
    prefix = service(exalb, namespace, "web-local", "Local")
    wait_next_hops(exalb, prefix, {addresses(exalb)[node]})


def test_cluster_service_is_announced_by_every_node_and_installed_as_ecmp(
    exalb: Bed, namespace: str
) -> None:
    prefix = _cluster_service(exalb, namespace)
    nodes = set(addresses(exalb).values())
    assert next_hops(exalb, prefix) == nodes
    assert exalb.router is not None
    router = exalb.router
    # zebra installs the multipath route into the router's kernel: one next hop per node.
    wait_for(
        f"{prefix} in the router's kernel via {sorted(nodes)}",
        lambda: router.kernel_next_hops(prefix) == nodes,
        timeout=10,
        interval=0.1,
        on_timeout=lambda: f"kernel: {sorted(router.kernel_next_hops(prefix))}",
    )


def test_local_next_hops_follow_scaling_and_readiness(exalb: Bed, namespace: str) -> None:
    web(exalb, namespace, replicas=1)
    (first,) = pods_by_node(exalb, namespace, 1)
    prefix = service(exalb, namespace, "web-local", "Local")
    wait_next_hops(exalb, prefix, {addresses(exalb)[first]})

    exalb.kubectl("scale", "deployment/web", "-n", namespace, "--replicas=2")
    pods = pods_by_node(exalb, namespace, 2)
    scaled = wait_next_hops(exalb, prefix, set(addresses(exalb).values()))

    exalb.kubectl("exec", "-n", namespace, pods[first], "--", "rm", READY_FILE)
    unready = wait_next_hops(exalb, prefix, {a for n, a in addresses(exalb).items() if n != first})
    print(f"\nnext hops followed: scale-out {scaled:.1f}s, pod unready {unready:.1f}s after")


def test_upgrade_rolls_one_node_at_a_time_and_the_prefix_never_leaves_frr(
    exalb: Bed, namespace: str
) -> None:
    prefix = _cluster_service(exalb, namespace)
    before = {p.metadata.name for p in ready_pods(exalb, SYSTEM, ANNOUNCERS, len(exalb.nodes))}

    samples = roll_announcers(exalb, prefix, "2")

    after = ready_pods(exalb, SYSTEM, ANNOUNCERS, len(exalb.nodes))
    assert not before & {p.metadata.name for p in after}, "every announcer was replaced"
    # maxUnavailable 1: each replacement was created after the previous one turned Ready.
    after.sort(key=lambda p: p.metadata.creation_timestamp)
    for earlier, later in itertools.pairwise(after):
        ready_at = next(c for c in earlier.status.conditions if c.type == "Ready")
        assert later.metadata.creation_timestamp >= ready_at.last_transition_time
    print(f"\nrollout: {len(samples)} RIB samples, next hops per sample {sorted(set(samples))}")
    assert min(samples) >= 1, f"{prefix} left FRR during the rollout: {samples}"
    assert 1 in samples, f"no sample caught a node restarting: {sorted(set(samples))}"
    wait_next_hops(exalb, prefix, set(addresses(exalb).values()))


def test_switching_to_deployment_mode_keeps_every_address_and_a_deployment_pod_leads(
    exalb: Bed, namespace: str
) -> None:
    prefix = _cluster_service(exalb, namespace)

    exalb.install_chart(RELEASE, SYSTEM, {"allocator": {"mode": "deployment"}})
    allocators = ready_pods(exalb, SYSTEM, ALLOCATORS, 2)
    announcers = ready_pods(exalb, SYSTEM, ANNOUNCERS, len(exalb.nodes))
    assert [c.name for p in announcers for c in p.spec.containers if c.name == "allocator"] == []
    assert not any(p.spec.host_network for p in allocators), "off the host network"
    assert {p.spec.service_account_name for p in allocators} == {"exalb-allocator"}
    exalb.kubectl("get", "poddisruptionbudget", "-n", SYSTEM, f"{RELEASE}-allocator")

    names = {p.metadata.name for p in allocators}

    def holder() -> str:
        return exalb.kubectl(
            "get", "lease", "-n", SYSTEM, "exalb-allocator", "-o", "jsonpath={.spec.holderIdentity}"
        )  # fmt: skip

    wait_for("a Deployment pod holds the Lease", lambda: holder() in names, 60, interval=0.5)
    wait_next_hops(exalb, prefix, set(addresses(exalb).values()))
    # The address is kept, and the new leader allocates.
    later = service(exalb, namespace, "web-later", "Cluster")
    assert later != prefix
    wait_next_hops(exalb, later, set(addresses(exalb).values()))


def test_uninstall_withdraws_every_route_and_leaves_only_the_kept_objects(
    exalb: Bed, namespace: str
) -> None:
    prefix = _cluster_service(exalb, namespace)

    exalb.helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout=120s")
    wait_next_hops(exalb, prefix, set(), timeout=10)
    wait_for("no session at FRR", lambda: not established(exalb), timeout=30, interval=0.2)

    with exalb.api_client() as api:
        core = client.CoreV1Api(api)
        wait_for(
            "the announcer pods gone",
            lambda: not core.list_namespaced_pod(SYSTEM).items,
            timeout=60,
            interval=0.5,
        )
    # The allocator's own objects, created at run time (the Lease, the assignments
    # ConfigMaps), are owned by its ServiceAccount: the garbage collector removes them.
    kinds = "all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases"
    cluster_made = {"configmap/kube-root-ca.crt", "serviceaccount/default"}

    def left() -> set[str]:
        return set(exalb.kubectl("get", kinds, "-n", SYSTEM, "-o", "name").split())

    wait_for("nothing of exalb left", lambda: left() == cluster_made, timeout=30, interval=0.5)
    cluster_wide = exalb.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", "app.kubernetes.io/instance=exalb",
        "-o", "name",
    ).split()  # fmt: skip
    assert cluster_wide == [], cluster_wide
    crds = exalb.kubectl("get", "crd", "-o", "name").split()
    assert {c.split("/")[1] for c in crds if c.endswith(".exalb.io")} == set(CRDS)
    exalb.kubectl("get", "namespace", f"{SYSTEM}-bgp-secrets")
