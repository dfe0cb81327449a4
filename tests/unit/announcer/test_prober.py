"""The data path prober against real sockets on 127.0.0.1: a listener passes, a closed
port is refused, and the loop re-checks on its schedule."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from announcer.core.datapath import Probe
from announcer.datapath import RETRY, Prober, connect
from announcer.metrics import Metrics
from exalb.assignments import DataPathTarget
from testbed.procs import free_port


@contextmanager
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def test_connect_passes_on_a_listener_and_is_refused_on_a_closed_port() -> None:
    with listener() as port:
        probe, result, took = connect(DataPathTarget("127.0.0.1", port), 1.0)
    assert (probe.ok, result) == (True, "passed")
    assert probe.target == f"127.0.0.1:{port}" and probe.detail.startswith("connected after ")
    assert 0 <= took < 1.0
    closed = free_port()
    probe, result, _ = connect(DataPathTarget("127.0.0.1", closed), 1.0)
    assert (probe.ok, result) == (False, "refused")
    assert probe.detail.startswith("refused after ")


def test_the_prober_reports_each_target_and_rechecks_until_it_passes_twice() -> None:
    reports: list[tuple[str, Probe]] = []
    lock = threading.Lock()

    def report(key: str, probe: Probe) -> None:
        with lock:
            reports.append((key, probe))

    metrics = Metrics()
    with listener() as port:
        targets = {
            "ns.up": DataPathTarget("127.0.0.1", port),
            "ns.down": DataPathTarget("127.0.0.1", free_port()),
            "ns.none": DataPathTarget(problem="no TCP port"),
        }
        prober = Prober(
            lambda: targets, report, metrics, "n1", interval=30, timeout=1, concurrency=2
        )
        prober.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with lock:
                    downs = sum(1 for k, _ in reports if k == "ns.down")
                if downs >= 3:
                    break
                time.sleep(0.05)
        finally:
            prober.stop()
    by_key: dict[str, list[bool]] = {}
    for key, probe in reports:
        by_key.setdefault(key, []).append(probe.ok)
    assert set(by_key) == {"ns.up", "ns.down"}  # a target with a problem is never connected
    assert by_key["ns.down"][:3] == [False, False, False]  # retried every RETRY seconds
    # a passing target is checked RISE times in a row RETRY apart, then every interval (30 s)
    assert by_key["ns.up"] == [True, True]
    count = metrics.registry.get_sample_value
    assert count("exalb_announcer_data_path_checks_total", {"result": "passed"}) == 2
    assert (count("exalb_announcer_data_path_checks_total", {"result": "refused"}) or 0) >= 3
    assert RETRY == 1.0
