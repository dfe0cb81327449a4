"""Fixtures for announcer integration tests: the BGPPeer CRD and a :class:`Lab` per test."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.manifests import install_crds


@pytest.fixture(scope="session")
def peer_crd(kube: client.ApiClient) -> None:
    install_crds(kube)


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """Like the root fixture, without waiting for the namespace controller to finish.

    Announcer tests only read from their namespace and create no Services, so the
    next test has nothing to trip over; not waiting saves ~5 s a test.
    """
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    core: Any = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


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
