"""Per-node session status in Kubernetes, written rarely and only when it changed.

One ``BGPSessionStatus`` per node (named after it) so ``kubectl get bgpsessionstatuses``
answers "which node has which session up" without a metrics stack. Writes are
rate-limited to one per interval per node (a 5,000-node cluster at 10 s is 500
writes/s worst case, so large clusters turn it off with interval 0), skipped
when nothing but timestamps changed, and never block announcing: failures are
logged and retried at the next interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from kubernetes import client

from kube import retry

from .sources import GROUP, VERSION

PLURAL = "bgpsessionstatuses"
log = structlog.get_logger("status")

Snapshot = Callable[[], dict[str, Any]]  # -> the ``status`` body, without ``updated``


class StatusWriter:
    def __init__(
        self, api: client.ApiClient, namespace: str, node: str, snapshot: Snapshot, interval: float
    ) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._ns = namespace
        self._node = node
        self._snapshot = snapshot
        self._interval = interval
        self._last: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._log = log.bind(node=node)

    def start(self) -> StatusWriter:
        if self._interval > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.write_once()
            except Exception as exc:
                self._log.warning("status write failed; retrying next interval", error=str(exc))

    def write_once(self) -> bool:
        status = self._snapshot()
        if status == self._last:
            return False
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BGPSessionStatus",
            "metadata": {"name": self._node},
            "status": {**status, "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        }

        def write() -> None:
            try:
                self._custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self._ns, PLURAL, self._node, {"status": body["status"]}
                )
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                self._custom.create_namespaced_custom_object(GROUP, VERSION, self._ns, PLURAL, body)

        retry.call(write, attempts=3, max_seconds=5)
        self._last = status
        return True
