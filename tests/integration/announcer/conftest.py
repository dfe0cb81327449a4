"""Fixtures for announcer integration tests: the BGPPeer CRD and a :class:`Lab` per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from testbed.controlplane import ControlPlane

from .lab import Lab, install_crd


@pytest.fixture(scope="session")
def peer_crd(kube: client.ApiClient) -> None:
    install_crd(kube)


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
