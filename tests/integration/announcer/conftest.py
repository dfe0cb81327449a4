"""Fixtures for announcer integration tests: the BGPPeer CRD and a :class:`Lab` per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.manifests import install_crds
from tests.conftest import fresh_namespace


@pytest.fixture(scope="session")
def peer_crd(kube: client.ApiClient) -> None:
    install_crds(kube)


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """Announcer tests create no Services: no need to wait for the namespace to go."""
    yield from fresh_namespace(kube, request, wait_deleted=False)


@pytest.fixture
def lab(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    namespace: str,
    peer_crd: None,
    tmp_path: Path,
) -> Iterator[Lab]:
    the_lab = Lab(control_plane, kube, namespace, tmp_path)
    yield the_lab
    print(the_lab.logs())  # pytest shows it only when the test failed
    the_lab.close()


@pytest.fixture(params=["gobgp", "frr", "bird"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each router-facing scenario runs against GoBGP, FRR and BIRD."""
    return str(request.param)
