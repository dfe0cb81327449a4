"""The real-node test bed, brought up once per session (it costs tens of seconds)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from testbed.nodes import Bed, start_bed

from .chart import installed
from .workloads import new_namespace


@pytest.fixture(scope="session")
def bed() -> Iterator[Bed]:
    t0 = time.monotonic()
    with start_bed(node_count=2) as started:
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in started.timings.items())
        print(f"\ntest bed up in {time.monotonic() - t0:.1f}s ({phases})")
        yield started


@pytest.fixture
def namespace(bed: Bed) -> Iterator[str]:
    with new_namespace(bed) as name:
        yield name


@pytest.fixture(scope="module")
def exalb(bed: Bed) -> Iterator[Bed]:
    """The chart installed once per module, with a pool and the router as every node's BGPPeer."""
    with installed(bed) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The frozen-node BFD module last: after a thaw the router's neighbour state for that
    node takes a while to settle, and the modules after it count every failed request
    (a run with it first saw 'No route to host' in test_traffic; alone, none)."""
    items.sort(key=lambda item: item.path.name == "test_bfd_failover.py")
