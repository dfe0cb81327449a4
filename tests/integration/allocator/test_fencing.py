"""Fencing against the real API server: a deposed leader's late status write fails.

The writers run in this process with the allocator's own code (``ServiceWriter``), each
with its own mirror, as two allocators on two nodes would: the new leader writes first
from the Service it read; the deposed one then writes from the version it planned from.
The API server refuses the second write (409) and the new leader's IP stays.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from allocator.kube.services import ServiceWrite, ServiceWriter
from exalb.kube import rest
from exalb.kube.informer import Informer
from exalb.kube.rest import resource_path
from testbed.controlplane import ControlPlane
from tests.integration.allocator.conftest import Cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def api(control_plane: ControlPlane) -> rest.Client:
    return rest.connect(str(control_plane.admin_kubeconfig))


@pytest.fixture
def writers(api: rest.Client, namespace: str) -> Iterator[list[ServiceWriter]]:
    made: list[ServiceWriter] = []
    yield made
    for w in made:
        w.shutdown()


def writer(
    api: rest.Client, namespace: str, validity: float, made: list[ServiceWriter]
) -> tuple[ServiceWriter, Informer]:
    """A writer whose lease (it believes) has ``validity`` seconds left; its mirror not watching."""
    mirror = Informer("services", api.lister(resource_path("v1", "services", namespace)))
    w = ServiceWriter(api, mirror, lambda: validity, workers=1)
    made.append(w)
    return w, mirror


def test_a_deposed_leaders_stale_status_write_is_refused_and_overwrites_nothing(
    api: rest.Client, cluster: Cluster, namespace: str, writers: list[ServiceWriter]
) -> None:
    cluster.service(namespace, "web")
    planned = api.get(resource_path("v1", "services", namespace, "web"))
    version = planned["metadata"]["resourceVersion"]
    new_leader, _ = writer(api, namespace, 10.0, writers)
    deposed, deposed_mirror = writer(api, namespace, 10.0, writers)
    deposed_mirror.observe(planned)

    done = new_leader.apply([ServiceWrite(namespace, "web", ("198.51.100.10",), "p", version)])
    assert done == {(namespace, "web"): None}

    # The deposed leader planned from the same version, before it lost the lease.
    late = deposed.apply([ServiceWrite(namespace, "web", ("198.51.100.99",), "p", version)])
    assert "HTTP 409" in str(late[(namespace, "web")])
    assert cluster.ingress(namespace, "web") == ["198.51.100.10"]
    # and its mirror was re-read, so its next plan starts from what the new leader wrote
    shown = deposed_mirror.get(f"{namespace}/web") or {}
    assert shown["status"]["loadBalancer"]["ingress"][0]["ip"] == "198.51.100.10"


def test_a_writer_without_a_valid_lease_sends_nothing(
    api: rest.Client, cluster: Cluster, namespace: str, writers: list[ServiceWriter]
) -> None:
    cluster.service(namespace, "web")
    version = api.get(resource_path("v1", "services", namespace, "web"))["metadata"][
        "resourceVersion"
    ]
    expired, _ = writer(api, namespace, 0.0, writers)
    out = expired.apply([ServiceWrite(namespace, "web", ("198.51.100.7",), "p", version)])
    assert "NotLeader" in str(out[(namespace, "web")])
    after = api.get(resource_path("v1", "services", namespace, "web"))
    assert after["metadata"]["resourceVersion"] == version  # not even the annotation
    assert cluster.ingress(namespace, "web") == []


def test_status_pool_annotation_and_label_are_one_conditional_write(
    api: rest.Client, cluster: Cluster, namespace: str, writers: list[ServiceWriter]
) -> None:
    """The real API server keeps metadata sent to a Service's /status: one request, one
    precondition, and a release takes all three away in one request as well."""
    cluster.service(namespace, "web")
    path = resource_path("v1", "services", namespace, "web")
    version = api.get(path)["metadata"]["resourceVersion"]
    observed: list[str] = []
    mirror = Informer("services", api.lister(resource_path("v1", "services", namespace)))
    w = ServiceWriter(api, mirror, lambda: 10.0, workers=1, on_observed=observed.append)
    writers.append(w)

    assert w.apply([ServiceWrite(namespace, "web", ("198.51.100.11",), "p", version)]) == {
        (namespace, "web"): None
    }
    stored = api.get(path)
    assert observed == [f"{namespace}/web"]  # one write
    assert cluster.ingress(namespace, "web") == ["198.51.100.11"]
    assert stored["metadata"]["annotations"]["exalb.io/ip-allocated-from-pool"] == "p"
    assert stored["metadata"]["labels"]["exalb.io/assigned"] == "true"

    released = ServiceWrite(namespace, "web", (), None, stored["metadata"]["resourceVersion"])
    assert w.apply([released]) == {(namespace, "web"): None}
    after = api.get(path)
    assert observed == [f"{namespace}/web"] * 2
    assert cluster.ingress(namespace, "web") == []
    assert "exalb.io/ip-allocated-from-pool" not in (after["metadata"].get("annotations") or {})
    assert "exalb.io/assigned" not in (after["metadata"].get("labels") or {})
