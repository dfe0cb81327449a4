"""The real-node test bed, brought up once per session (it costs tens of seconds)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from testbed.nodes import Bed, start_bed


@pytest.fixture(scope="session")
def bed() -> Iterator[Bed]:
    t0 = time.monotonic()
    with start_bed(node_count=2) as started:
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in started.timings.items())
        print(f"\ntest bed up in {time.monotonic() - t0:.1f}s ({phases})")
        yield started
