"""Writing what the plan decided onto Services: status, the pool annotation, and Events.

Writes go through a small thread pool (one API round trip is a few ms; 1,000
Services created at once would otherwise queue for seconds), and every write
first asks the elector whether this process may still write. A Service's
status and its pool annotation are two requests (status is a subresource);
they go out side by side, so a new Service costs one round trip, not two.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from kubernetes import client

from allocator.core.service import POOL_ANNOTATION
from exalb.kube import retry
from exalb.kube.informer import Informer

log = structlog.get_logger("allocator.services")


class NotLeader(RuntimeError):
    """The lease was lost between the plan and the write: the write is dropped."""


@dataclass(frozen=True)
class ServiceWrite:
    namespace: str
    name: str
    ingress: tuple[str, ...] | None  # None: leave status alone; () clears it
    pool: str | bool | None  # a pool name, None to remove the annotation, False to leave it


class ServiceWriter:
    def __init__(
        self,
        api: client.ApiClient,
        services: Informer,
        may_write: Callable[[], bool],
        workers: int = 8,
        on_observed: Callable[[str], None] | None = None,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._services = services
        self._may_write = may_write
        self._on_observed = on_observed  # told the key of every Service a write updated
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="svc-write")

    def apply(self, writes: list[ServiceWrite]) -> dict[tuple[str, str], str | None]:
        """Run all writes; returns (ns, name) -> error text, None on success."""
        futures = []
        for w in writes:
            key = (w.namespace, w.name)
            before = self._services.get(f"{w.namespace}/{w.name}")
            if w.ingress is not None:
                futures.append((key, self._pool.submit(self._status, w, w.ingress, before)))
            if w.pool is None or isinstance(w.pool, str):  # False: leave it alone
                futures.append((key, self._pool.submit(self._annotate, w, w.pool, before)))
        out: dict[tuple[str, str], str | None] = {}
        for key, fut in futures:
            try:
                fut.result()
                out.setdefault(key, None)
            except Exception as exc:
                out[key] = retry.describe(exc)
                log.warning("service write failed", service=f"{key[0]}/{key[1]}", error=out[key])
        return out

    def _status(self, w: ServiceWrite, ingress: tuple[str, ...], before: Any) -> None:
        body = {
            "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ingress]}}
        }
        self._settle(
            before,
            self._write(
                lambda: self._core.patch_namespaced_service_status(
                    w.name, w.namespace, body, _preload_content=False, _request_timeout=10
                )
            ),
        )

    def _annotate(self, w: ServiceWrite, pool: str | None, before: Any) -> None:
        meta = {"metadata": {"annotations": {POOL_ANNOTATION: pool}}}
        self._settle(
            before,
            self._write(
                lambda: self._core.patch_namespaced_service(
                    w.name, w.namespace, meta, _preload_content=False, _request_timeout=10
                )
            ),
        )

    def _settle(self, before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        # A merge patch has no precondition: if the response shows a change that is not
        # ours (someone edited the Service meanwhile), reconcile again; else stay quiet.
        if before is None or not _only_ours_changed(before, after):
            self._services.observe(after, notify=True)

    def _write(self, call: Callable[[], Any]) -> dict[str, Any]:
        if not self._may_write():
            raise NotLeader("not the leader any more")
        resp = retry.call(call, attempts=4, max_seconds=5)
        stored = self._services.observe(json.loads(resp.data), notify=False)
        if self._on_observed is not None:
            md = stored.get("metadata") or {}
            self._on_observed(f"{md.get('namespace', '')}/{md.get('name', '')}")
        return stored

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _only_ours_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """True if ``after`` differs from ``before`` only in what the allocator writes."""
    if before.get("spec") != after.get("spec"):
        return False
    b, a = before.get("metadata", {}), after.get("metadata", {})
    if b.get("labels") != a.get("labels") or b.get("uid") != a.get("uid"):
        return False
    theirs_b = {k: v for k, v in (b.get("annotations") or {}).items() if k != POOL_ANNOTATION}
    theirs_a = {k: v for k, v in (a.get("annotations") or {}).items() if k != POOL_ANNOTATION}
    return theirs_b == theirs_a
