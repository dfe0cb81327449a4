"""What every exalb process exports besides its own metrics: build info and ``process_*``.

``exalb_build_info`` carries the version as a label (value always 1), so a dashboard
can show which version each pod runs and a rollout can be followed; the ``process_*``
metrics (CPU, resident memory, open file descriptors, start time) are the client
library's standard ones, read from /proc of this process.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, disable_created_metrics


def _version() -> str:
    try:
        return version("exalb")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def register_process_metrics(registry: CollectorRegistry) -> None:
    """Adds ``exalb_build_info`` and the standard ``process_*`` metrics to ``registry``.

    It also turns off the client library's ``*_created`` series, process-wide: in the
    text format they are extra gauges beside every counter and histogram, doubling the
    series for nothing Prometheus's own ``increase()`` and ``rate()`` need.
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]
    build_info = Gauge(
        "exalb_build_info",
        "Always 1; the labels say which exalb version and Python run this process.",
        ["version", "python_version"],
        registry=registry,
    )
    build_info.labels(_version(), platform.python_version()).set(1)
    ProcessCollector(registry=registry)
