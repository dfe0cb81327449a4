"""The real-node test bed, brought up once per session (it costs tens of seconds)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from testbed.nodes import Bed, start_bed
from testbed.procs import wait_for

from .chart import installed


@pytest.fixture(scope="session")
def bed() -> Iterator[Bed]:
    t0 = time.monotonic()
    with start_bed(node_count=2) as started:
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in started.timings.items())
        print(f"\ntest bed up in {time.monotonic() - t0:.1f}s ({phases})")
        yield started


@pytest.fixture
def namespace(bed: Bed) -> Iterator[str]:
    """A namespace whose ``default`` ServiceAccount exists (admission requires it for pods)."""
    name = f"realnode-{uuid.uuid4().hex[:6]}"
    with bed.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        wait_for(
            f"ServiceAccount {name}/default",
            lambda: bool(core.list_namespaced_service_account(name).items),
            timeout=30,
            interval=0.2,
        )
        yield name
        core.delete_namespace(name)


@pytest.fixture(scope="module")
def exalb(bed: Bed) -> Iterator[Bed]:
    """The chart installed once per module, with a pool and the router as every node's BGPPeer."""
    with installed(bed) as running:
        yield running
