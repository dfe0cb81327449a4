"""`helm install` of charts/exalb, with the image tools/image builds, on the bed's real nodes.

What the bed's FRR router reports is the judge: its sessions and, per Service
address, the next hops of the paths it holds. The tests run in file order on
one release: install, Services, scaling and readiness, a rolling upgrade, a
switch to ``allocator.mode: deployment``, and last the uninstall.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from testbed.nodes import ROUTER_ADDRESS, ROUTER_ASN, Bed
from testbed.procs import wait_for

from .workloads import container, ready_pods

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

RELEASE, SYSTEM = "exalb", "exalb-system"
ANNOUNCERS = "app.kubernetes.io/instance=exalb,app.kubernetes.io/component=announcer"
ALLOCATORS = "app.kubernetes.io/instance=exalb,app.kubernetes.io/component=allocator"
POOL = "203.0.113.0/28"
EXALB_ASN = 64513
# Where the test Deployment's readiness probe looks: `rm` it and the pod turns unready.
READY_FILE = "/tmp/www/ready"
# docs/install.md's commands for what the allocator leaves behind.
CRDS = ("vippools.exalb.io", "bgppeers.exalb.io", "bgpsessionstatuses.exalb.io")


def _apply(bed: Bed, *objects: dict[str, Any]) -> None:
    manifest = bed.workdir / "chart-test-objects.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    bed.kubectl("apply", "-f", str(manifest))


@pytest.fixture(scope="module")
def exalb(bed: Bed) -> Iterator[Bed]:
    """The chart installed, with a pool and the bed's router as every node's BGPPeer."""
    yield from installed(
        bed,
        vippool("test", [POOL]),
        {
            "apiVersion": "exalb.io/v1alpha1",
            "kind": "BGPPeer",
            "metadata": {"name": "router", "namespace": SYSTEM},
            "spec": {"myASN": EXALB_ASN, "peerASN": ROUTER_ASN, "peerAddress": ROUTER_ADDRESS},
        },
    )


def vippool(name: str, addresses: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "exalb.io/v1alpha1",
        "kind": "VIPPool",
        "metadata": {"name": name, "namespace": SYSTEM},
        "spec": {"addresses": addresses},
    }


def installed(bed: Bed, *objects: dict[str, Any]) -> Iterator[Bed]:
    """The chart installed with ``objects`` applied; uninstalled at the end (a fixture's body)."""
    bed.install_chart(RELEASE, SYSTEM, {})
    _apply(bed, *objects)
    try:
        yield bed
    finally:
        if RELEASE in bed.helm("list", "-n", SYSTEM, "-q").split():
            bed.helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout=120s")
        # What an uninstall keeps: the CRDs (with the pool, the peer and the session
        # statuses) and the namespaces, so the next tests find the bed as it was.
        bed.kubectl("delete", "crd", *CRDS, "--ignore-not-found", "--timeout=60s")
        bed.kubectl(
            "delete", "namespace", SYSTEM, f"{SYSTEM}-bgp-secrets", "--ignore-not-found",
            "--timeout=90s",
        )  # fmt: skip


def _established(bed: Bed) -> set[str]:
    assert bed.router is not None
    return {peer for peer, s in bed.router.sessions().items() if s.established}


def _next_hops(bed: Bed, prefix: str) -> set[str]:
    assert bed.router is not None
    return {p.next_hop for p in bed.router.paths(prefix)}


def _wait_next_hops(bed: Bed, prefix: str, expected: set[str], timeout: float = 30) -> float:
    """Seconds until FRR's next hops for ``prefix`` are exactly ``expected``."""
    t0 = time.monotonic()
    wait_for(
        f"FRR's next hops for {prefix} == {sorted(expected)}",
        lambda: _next_hops(bed, prefix) == expected,
        timeout=timeout,
        interval=0.1,
        on_timeout=lambda: f"FRR has {sorted(_next_hops(bed, prefix))}\n{_announcer_logs(bed)}",
    )
    return time.monotonic() - t0


def _announcer_logs(bed: Bed) -> str:
    try:
        return bed.kubectl("logs", "-n", SYSTEM, "-l", ANNOUNCERS, "-c", "announcer", "--tail=30")
    except RuntimeError as exc:
        return str(exc)


def _address(bed: Bed) -> dict[str, str]:
    return {n.name: n.address for n in bed.nodes}


def _web(bed: Bed, namespace: str, replicas: int) -> None:
    """http.server pods, at most one per node, Ready while READY_FILE exists."""
    labels = {"app": "web"}
    www = READY_FILE.rsplit("/", 1)[0]
    server = container(
        ["sh", "-c", f"mkdir -p {www} && touch {READY_FILE} && cd {www} && "
         "exec python3 -m http.server --bind :: 8080"],  # both families
        readinessProbe={
            "httpGet": {"path": "/ready", "port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    )  # fmt: skip
    spread = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}
            ]
        }
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [server], "affinity": spread},
            },
        },
    }
    _apply(bed, deployment)


def _service(bed: Bed, namespace: str, name: str, policy: str) -> str:
    """A LoadBalancer Service in front of the web pods; the address exalb gave it."""
    _apply(
        bed,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "type": "LoadBalancer",
                "externalTrafficPolicy": policy,
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080}],
            },
        },
    )
    ingress: list[dict[str, str]] = []

    def assigned() -> bool:
        nonlocal ingress
        svc = json.loads(bed.kubectl("get", "service", "-n", namespace, name, "-o", "json"))
        ingress = svc["status"].get("loadBalancer", {}).get("ingress", [])
        return bool(ingress)

    wait_for(f"an address for {namespace}/{name}", assigned, timeout=60, interval=0.2)
    ip = ingress[0]["ip"]
    assert ip.startswith("203.0.113."), ingress
    return f"{ip}/32"


def _pods_by_node(bed: Bed, namespace: str, count: int) -> dict[str, str]:
    return {p.spec.node_name: p.metadata.name for p in ready_pods(bed, namespace, "app=web", count)}


def _cluster_service(bed: Bed, namespace: str) -> str:
    """A Cluster Service in front of one web pod, once every node announces it: its prefix."""
    _web(bed, namespace, replicas=1)
    _pods_by_node(bed, namespace, 1)
    prefix = _service(bed, namespace, "web-cluster", "Cluster")
    _wait_next_hops(bed, prefix, set(_address(bed).values()))
    return prefix


def test_install_every_pod_ready_and_every_node_established_at_frr(exalb: Bed) -> None:
    pods = ready_pods(exalb, SYSTEM, ANNOUNCERS, len(exalb.nodes))
    assert {p.spec.node_name for p in pods} == set(_address(exalb))
    for pod in pods:
        assert {c.name for c in pod.spec.containers} == {"announcer", "allocator"}
        assert all(s.ready for s in pod.status.container_statuses), pod.status
    wait_for(
        "every node's session Established at FRR",
        lambda: _established(exalb) == set(_address(exalb).values()),
        timeout=60,
        interval=0.5,
        on_timeout=lambda: (
            f"FRR: {exalb.router and exalb.router.sessions()}\n" + _announcer_logs(exalb)
        ),
    )


def test_local_service_is_announced_by_the_nodes_with_a_ready_pod(
    exalb: Bed, namespace: str
) -> None:
    _web(exalb, namespace, replicas=1)
    (node,) = _pods_by_node(exalb, namespace, 1)
    prefix = _service(exalb, namespace, "web-local", "Local")
    _wait_next_hops(exalb, prefix, {_address(exalb)[node]})


def test_cluster_service_is_announced_by_every_node(exalb: Bed, namespace: str) -> None:
    prefix = _cluster_service(exalb, namespace)
    assert _next_hops(exalb, prefix) == set(_address(exalb).values())


def test_local_next_hops_follow_scaling_and_readiness(exalb: Bed, namespace: str) -> None:
    _web(exalb, namespace, replicas=1)
    (first,) = _pods_by_node(exalb, namespace, 1)
    prefix = _service(exalb, namespace, "web-local", "Local")
    _wait_next_hops(exalb, prefix, {_address(exalb)[first]})

    exalb.kubectl("scale", "deployment/web", "-n", namespace, "--replicas=2")
    pods = _pods_by_node(exalb, namespace, 2)
    scaled = _wait_next_hops(exalb, prefix, set(_address(exalb).values()))

    exalb.kubectl("exec", "-n", namespace, pods[first], "--", "rm", READY_FILE)
    unready = _wait_next_hops(exalb, prefix, {a for n, a in _address(exalb).items() if n != first})
    print(f"\nnext hops followed: scale-out {scaled:.1f}s, pod unready {unready:.1f}s after")


def test_upgrade_rolls_one_node_at_a_time_and_the_prefix_never_leaves_frr(
    exalb: Bed, namespace: str
) -> None:
    prefix = _cluster_service(exalb, namespace)
    before = {p.metadata.name for p in ready_pods(exalb, SYSTEM, ANNOUNCERS, len(exalb.nodes))}

    upgrade_error: list[BaseException] = []

    def upgrade() -> None:
        try:
            exalb.install_chart(
                RELEASE, SYSTEM, {"announcer": {"podAnnotations": {"exalb.io/test-roll": "2"}}}
            )
        except BaseException as exc:
            upgrade_error.append(exc)

    samples: list[int] = []
    rolling = threading.Thread(target=upgrade)
    rolling.start()
    deadline = time.monotonic() + 240
    while rolling.is_alive() and time.monotonic() < deadline:
        samples.append(len(_next_hops(exalb, prefix)))
        time.sleep(0.1)
    rolling.join(timeout=10)
    assert not rolling.is_alive(), "helm upgrade still running after 240 s"
    assert not upgrade_error, upgrade_error

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
    _wait_next_hops(exalb, prefix, set(_address(exalb).values()))


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
    _wait_next_hops(exalb, prefix, set(_address(exalb).values()))
    # The address is kept, and the new leader allocates.
    later = _service(exalb, namespace, "web-later", "Cluster")
    assert later != prefix
    _wait_next_hops(exalb, later, set(_address(exalb).values()))


def test_uninstall_withdraws_every_route_and_leaves_only_the_kept_objects(
    exalb: Bed, namespace: str
) -> None:
    prefix = _cluster_service(exalb, namespace)

    exalb.helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout=120s")
    _wait_next_hops(exalb, prefix, set(), timeout=10)
    wait_for("no session at FRR", lambda: not _established(exalb), timeout=30, interval=0.2)

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
