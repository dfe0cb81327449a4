"""The data path prober: TCP connects from this node to Services' ClusterIPs (issue 13).

It connects from the announcer's own network namespace (the node's: the DaemonSet runs
with hostNetwork), so the connect goes through this node's kube-proxy rules, the same
sync that programs the Service's load-balancer IP. Why the ClusterIP and not the
load-balancer IP: docs/traffic-steering.md, "Announce after the data path answers".

Each result goes to the reconciler (``report``), which keeps them in
``core.datapath.DataPathChecks`` and decides; this module only connects. A target is
checked at once when it appears, every ``RETRY`` seconds until it has passed
``RISE`` times in a row, then every ``interval``. At most ``concurrency`` connects run
at once, each bounded by ``timeout``.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import structlog

from announcer.core.datapath import RISE, Probe
from announcer.metrics import Metrics
from exalb.assignments import DataPathTarget
from exalb.background import Loop

RETRY = 1.0  # seconds between checks of a target that has not passed RISE times in a row
log = structlog.get_logger("datapath")

Targets = Callable[[], Mapping[str, DataPathTarget]]  # assignment key -> where to connect
Report = Callable[[str, Probe], None]


def connect(target: DataPathTarget, timeout: float) -> tuple[Probe, str, float]:
    """One connect to ``target``: the probe, its result label for the metrics, its seconds.

    The socket is closed with a reset (SO_LINGER 0): a check every few seconds per
    Service must not leave a TIME_WAIT socket behind each time.
    """
    started = time.monotonic()
    family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
    result, how = "error", "failed"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sock.connect((target.address, target.port))
            result, how = "passed", "connected"
        except TimeoutError:
            result, how = "timeout", "timed out"
        except ConnectionRefusedError:
            result, how = "refused", "refused"
        except OSError as exc:
            how = f"failed ({exc.strerror or type(exc).__name__})"
    took = time.monotonic() - started
    probe = Probe(str(target), result == "passed", f"{how} after {took:.3f} s", time.time())
    return probe, result, took


class Prober:
    """A background loop connecting to every target that is due, a bounded few at a time."""

    def __init__(
        self,
        targets: Targets,
        report: Report,
        metrics: Metrics,
        node: str,
        interval: float = 10.0,
        timeout: float = 2.0,
        concurrency: int = 8,
    ) -> None:
        self._targets = targets
        self._report = report
        self._metrics = metrics
        self._interval = interval
        self._timeout = timeout
        self._due: dict[tuple[str, str], float] = {}  # (key, target) -> monotonic due time
        self._passes: dict[tuple[str, str], int] = {}  # consecutive passes, for RETRY
        self._log = log.bind(node=node)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="datapath")
        self._loop = Loop("data path check", self._round_now, None, self._log, after_error=RETRY)

    def start(self) -> Prober:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop(self._timeout + 5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """The targets changed: check the new ones now, not at the next due time."""
        self._loop.wake()

    def _round_now(self) -> float:
        return self.round(self._pool) - time.monotonic()

    def round(self, pool: ThreadPoolExecutor) -> float:
        """Check every due target; returns when the next one is due (monotonic)."""
        targets = {(k, str(t)): t for k, t in self._targets().items() if not t.problem}
        now = time.monotonic()
        for gone in [kt for kt in self._due if kt not in targets]:
            del self._due[gone]
            self._passes.pop(gone, None)
        due = [kt for kt in targets if self._due.get(kt, 0.0) <= now]
        for kt, (probe, result, took) in zip(
            due, pool.map(lambda kt: connect(targets[kt], self._timeout), due), strict=True
        ):
            self._observe(kt, probe, result, took)
        return min(self._due.values(), default=time.monotonic() + self._interval)

    def _observe(self, kt: tuple[str, str], probe: Probe, result: str, took: float) -> None:
        key = kt[0]
        before = self._passes.get(kt)
        passes = (before or 0) + 1 if probe.ok else 0
        self._passes[kt] = passes
        self._due[kt] = time.monotonic() + (self._interval if passes >= RISE else RETRY)
        self._metrics.data_path_checks.labels(result).inc()
        self._metrics.data_path_check_seconds.observe(took)
        if before is None or (before > 0) != probe.ok:
            level = self._log.info if probe.ok else self._log.warning
            level(
                "data path check passed" if probe.ok else "data path check failed",
                service=key,
                target=probe.target,
                detail=probe.detail,
            )
        self._report(key, probe)
