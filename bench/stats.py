"""Percentiles and a watch that timestamps when each Service first shows an ingress IP."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from exalb.kube.informer import Informer
from exalb.kube.rest import Client, resource_path


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; what "p99" means in bench/README.md."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 0.50) * 1000, 1),
        "p99_ms": round(pct(values, 0.99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else float("nan"),
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else float("nan"),
    }


class IngressClock:
    """Records, per ``ns/name``, the monotonic time the watch first delivered an ingress IP."""

    def __init__(self, api: Client, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self._cv = threading.Condition()
        self._inf = Informer(
            "bench-services",
            api.lister(resource_path("v1", "services", namespace)),
            self._on_change,
        )

    def _on_change(self, key: str, obj: dict[str, Any] | None) -> None:
        if obj is None or key in self.seen:
            return
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        if ingress:
            with self._cv:
                self.seen[key] = time.monotonic()
                self._cv.notify_all()

    def start(self) -> IngressClock:
        self._inf.start()
        self._inf.wait_synced(30)
        return self

    def stop(self) -> None:
        self._inf.stop()

    def wait(self, keys: list[str], timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: all(k in self.seen for k in keys), timeout)

    def wait_count(self, n: int, timeout: float) -> bool:
        """Until ``n`` Services have had an IP: one comparison per event, for thousands."""
        with self._cv:
            return self._cv.wait_for(lambda: len(self.seen) >= n, timeout)
