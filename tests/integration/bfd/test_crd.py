"""spec.bfd through the real apiserver: stored as given, out-of-range values refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from testbed.manifests import install_crds
from tests.conftest import fresh_namespace


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    install_crds(kube)
    yield from fresh_namespace(kube, request, wait_deleted=False)


def _create(kube: client.ApiClient, namespace: str, name: str, bfd: dict[str, Any]) -> Any:
    body = {
        "apiVersion": "exalb.io/v1alpha1",
        "kind": "BGPPeer",
        "metadata": {"name": name},
        "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.51.100.2", "bfd": bfd},
    }
    return client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "exalb.io", "v1alpha1", namespace, "bgppeers", body
    )


def test_bfd_is_stored_as_given(kube: client.ApiClient, namespace: str) -> None:
    bfd = {
        "enabled": True,
        "minReceiveInterval": 100,
        "minTransmitInterval": 200,
        "detectMultiplier": 5,
    }
    assert _create(kube, namespace, "fast", bfd)["spec"]["bfd"] == bfd


@pytest.mark.parametrize(
    ("bfd", "field"),
    [
        ({"minReceiveInterval": 5}, "spec.bfd.minReceiveInterval"),
        ({"minTransmitInterval": 60001}, "spec.bfd.minTransmitInterval"),
        ({"detectMultiplier": 1}, "spec.bfd.detectMultiplier"),
    ],
)
def test_out_of_range_bfd_is_refused(
    kube: client.ApiClient, namespace: str, bfd: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as refused:
        _create(kube, namespace, "bad", bfd)
    assert refused.value.status == 422
    assert field in str(refused.value.body)
