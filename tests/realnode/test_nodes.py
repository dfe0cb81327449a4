"""The real-node test bed runs the exalb image on real kubelets, next to a real FRR router."""

from __future__ import annotations

import ipaddress
import json
import sys

import pytest
from kubernetes import client

from testbed import netns
from testbed.dualstack import ROUTER_ADDRESS_V6, pod_cidr_v6
from testbed.nodes import CLIENT_LINK, ROUTER_ADDRESS, Bed, pod_cidr, ready_nodes, router_end
from testbed.procs import wait_for

from .workloads import container, ready_pods

pytestmark = [pytest.mark.integration, pytest.mark.realnode]


def test_every_node_is_ready_at_its_address(bed: Bed) -> None:
    with bed.api_client() as api:
        assert ready_nodes(client.CoreV1Api(api)) == {n.name for n in bed.nodes}
    listed = json.loads(bed.kubectl("get", "nodes", "-o", "json"))["items"]
    internal = {
        n["metadata"]["name"]: [
            a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"
        ]
        for n in listed
    }
    assert internal == {n.name: n.addresses for n in bed.nodes}
    assert all(len(n.addresses) == 2 for n in bed.nodes), "the bed is dual-stack"


def test_a_deployment_of_the_image_serves_from_its_nodes_pod_range(
    bed: Bed, namespace: str
) -> None:
    """kubelet's readiness probe reaches the pod over the CNI bridge, so the pod network works."""
    labels = {"app": "web"}
    server = container(
        ["python3", "-m", "http.server", "8080"],
        readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [server]}},
        },
    }
    with bed.api_client() as api:
        client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    pods = ready_pods(bed, namespace, "app=web", 2)
    ranges = {
        n.name: [ipaddress.ip_network(c) for c in (pod_cidr(i + 1), pod_cidr_v6(i + 1))]
        for i, n in enumerate(bed.nodes)
    }
    for pod in pods:
        ips = [ipaddress.ip_address(p.ip) for p in pod.status.pod_ips]
        assert [ip.version for ip in ips] == [4, 6], pod.status
        assert all(ip in r for ip, r in zip(ips, ranges[pod.spec.node_name], strict=True))


def test_a_host_network_daemonset_runs_the_announcer_non_root_read_only_reaching_the_api(
    bed: Bed, namespace: str
) -> None:
    labels = {"app": "announcer"}
    # kube-proxy routes the kubernetes Service to the apiserver, as in-cluster clients need.
    api = (
        "import os, socket; socket.create_connection((os.environ['KUBERNETES_SERVICE_HOST'],"
        " int(os.environ['KUBERNETES_SERVICE_PORT'])), 5); print('apiserver reachable')"
    )
    announcer = container(
        ["sh", "-c", f'exalb-announcer --help && python3 -c "{api}" && id -u && exec sleep 3600'],
        securityContext={
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    )
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "announcer"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"hostNetwork": True, "containers": [announcer]},
            },
        },
    }
    with bed.api_client() as api:
        client.AppsV1Api(api).create_namespaced_daemon_set(namespace, daemonset)
    pods = ready_pods(bed, namespace, "app=announcer", len(bed.nodes))
    assert {p.status.pod_ip for p in pods} == {n.address for n in bed.nodes}
    for pod in pods:
        log = ""

        def finished(name: str = pod.metadata.name) -> bool:
            nonlocal log
            log = bed.kubectl("logs", "-n", namespace, name)
            return "65532" in log or "Error" in log

        wait_for(f"{pod.metadata.name}'s checks", finished, timeout=60, interval=0.5)
        assert "usage: exalb-announcer" in log, log
        assert "apiserver reachable" in log, log
        assert log.rsplit(maxsplit=1)[-1] == "65532", log


def test_the_router_runs_frr_and_every_node_reaches_its_bgp_address(bed: Bed) -> None:
    assert bed.router is not None
    assert "FRRouting" in bed.router.version()
    assert bed.router.sessions() == {}
    for node in bed.nodes:
        for address in (ROUTER_ADDRESS, ROUTER_ADDRESS_V6):
            connect = f"import socket; socket.create_connection(('{address}', 179), 5)"
            netns.run(node.netns, [sys.executable, "-c", connect])


def test_the_client_reaches_every_node_through_the_router_only(bed: Bed) -> None:
    """The client namespace has one link, to the router, whose forwarding carries its traffic."""
    routes = netns.run(bed.ns("client"), ["ip", "route"])
    assert routes.startswith(f"default via {router_end(CLIENT_LINK)} dev eth0"), routes
    for node in bed.nodes:
        connect = f"import socket; socket.create_connection(('{node.address}', 10250), 5)"
        netns.run(bed.ns("client"), [sys.executable, "-c", connect])
