"""Shared fixtures: the real control plane, a namespace per test, and router factories."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from kubernetes import client

from testbed.controlplane import ControlPlane, start_control_plane
from testbed.procs import free_port, wait_for
from testbed.routers import KINDS, Neighbor, Router

# Properties are about results, never about speed: on a loaded 2-core machine a wall-clock
# deadline per example fails correct code (speed is measured in bench/).
settings.register_profile("exalb", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("exalb")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = start_control_plane(tmp_path_factory.mktemp("control-plane"))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """An admin API client (system:masters)."""
    with control_plane.api_client() as api:
        yield api


def fresh_namespace(
    kube: client.ApiClient, request: pytest.FixtureRequest, wait_deleted: bool
) -> Iterator[str]:
    """A fresh namespace for this test, deleted afterwards.

    ``wait_deleted``: wait until kube-controller-manager has emptied and removed it, so
    cluster-wide controllers of the next test (the allocator watches every Service) never
    see this test's leftovers. Tests that create no Services can skip the ~5 s wait.
    """
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    if wait_deleted:
        wait_for(f"namespace {name} deleted", lambda: _gone(core, name), 120, interval=0.25)


@pytest.fixture
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_namespace(kube, request, wait_deleted=True)


def _gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


RouterFactory = Callable[..., Router]


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterFactory]:
    """start a real router: ``router("gobgp", "127.0.0.2", 64512, [Neighbor(...)])``."""
    started: list[Router] = []

    def start(
        kind: str,
        address: str,
        asn: int,
        neighbors: Sequence[Neighbor],
        port: int | None = None,
    ) -> Router:
        cls = KINDS[kind]
        r = cls(
            address=address,
            port=port or free_port(address),
            asn=asn,
            neighbors=list(neighbors),
            workdir=tmp_path / f"{kind}-{address}",
        )
        started.append(r)
        r.start()
        return r

    yield start
    for r in started:
        r.stop()
