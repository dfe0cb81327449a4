"""Writing what the plan decided onto Services: status and the pool annotation.

Writes go through a small thread pool (one API round trip is a few ms; 1,000
Services created at once would otherwise queue for seconds). Every attempt of
every write first asks the lease how long it is still valid (``retry.fenced``).

A write is conditional on the resourceVersion the plan was made from: a
merge patch carrying ``metadata.resourceVersion`` is refused with 409 if the
Service changed since, so a deposed leader's late write cannot overwrite the
new leader's, and nobody's edit is planned over. A 409 re-reads the Service
into the mirror and fails the write; the next pass plans from what it read.

Status, the pool annotation and the ``exalb.io/assigned`` label
(``exalb.assignments.slicescope``: it scopes the announcers' EndpointSlice watch)
go in one request to the status subresource: the Service's status strategy resets
only ``spec`` (its reset fields), so the metadata is stored with the status, at
once, under one precondition. Two requests in a row had made allocating 10,000
Services at start-up mostly a wait for writes (bench/README.md). Should an API
server ever drop metadata sent to ``/status``, the response shows it, and the
marks follow in a second request conditional on the version the first produced.
A released Service loses all three.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog

from allocator.core.service import POOL_ANNOTATION
from exalb.assignments.slicescope import SERVICE_LABEL
from exalb.kube import retry
from exalb.kube.informer import Informer
from exalb.kube.rest import ApiError, Client, resource_path

log = structlog.get_logger("allocator.services")


@dataclass(frozen=True)
class ServiceWrite:
    namespace: str
    name: str
    ingress: tuple[str, ...] | None  # None: leave status alone; () clears it
    pool: str | bool | None  # a pool name, None to remove the annotation, False to leave it
    resource_version: str  # of the Service object the plan was made from


class ServiceWriter:
    def __init__(
        self,
        api: Client,
        services: Informer,
        validity: Callable[[], float],
        workers: int = 8,
        on_observed: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api
        self._services = services
        self._validity = validity
        self._on_observed = on_observed  # told the key of every Service a write updated
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="svc-write")

    def apply(self, writes: list[ServiceWrite]) -> dict[tuple[str, str], str | None]:
        """Run all writes; returns (ns, name) -> error text, None on success."""
        futures = [((w.namespace, w.name), self._pool.submit(self._one, w)) for w in writes]
        out: dict[tuple[str, str], str | None] = {}
        for key, fut in futures:
            try:
                fut.result()
                out[key] = None
            except Exception as exc:
                out[key] = retry.describe(exc)
                log.warning("service write failed", service=f"{key[0]}/{key[1]}", error=out[key])
        return out

    def _one(self, w: ServiceWrite) -> None:
        marks = _marks(w.pool)
        if w.ingress is None:
            if marks:
                self._write(w, {"metadata": dict(marks)}, w.resource_version)
            return
        ingress = [{"ip": ip, "ipMode": "VIP"} for ip in w.ingress]
        body = {"status": {"loadBalancer": {"ingress": ingress}}, "metadata": dict(marks)}
        stored = self._write(w, body, w.resource_version, "status")
        if marks and not _carries(stored, marks):
            version = str(stored["metadata"]["resourceVersion"])
            self._write(w, {"metadata": dict(marks)}, version)

    def _write(
        self, w: ServiceWrite, body: dict[str, Any], version: str, sub: str = ""
    ) -> dict[str, Any]:
        """One conditional merge patch; returns the Service as it stored it."""
        body.setdefault("metadata", {})["resourceVersion"] = version
        path = resource_path("v1", "services", w.namespace, w.name) + (f"/{sub}" if sub else "")
        try:
            after = retry.fenced(
                lambda t: self._api.patch(path, body, timeout=t, retry_connection=False),
                self._validity,
            )
        except ApiError as exc:
            if exc.status == 409:
                self._reread(w)
            raise
        # The precondition makes the response the planned object plus our change: nothing
        # in it is news to the reconciler.
        stored = self._services.observe(after, notify=False)
        self._observed(stored)
        return after

    def _reread(self, w: ServiceWrite) -> None:
        """After a 409: show the mirror the Service as it is now, so the next plan starts there."""
        try:
            now = self._api.get(resource_path("v1", "services", w.namespace, w.name))
        except Exception as exc:
            log.info("service re-read failed", service=f"{w.namespace}/{w.name}", error=str(exc))
            return
        self._observed(self._services.observe(now, notify=True))

    def _observed(self, stored: dict[str, Any]) -> None:
        if self._on_observed is not None:
            md = stored.get("metadata") or {}
            self._on_observed(f"{md.get('namespace', '')}/{md.get('name', '')}")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _marks(pool: str | bool | None) -> dict[str, Any]:
    """The pool annotation and the assigned label a write sets (a pool) or removes (None);
    nothing when it leaves them alone (False)."""
    if pool is False:
        return {}
    return {
        "annotations": {POOL_ANNOTATION: pool},
        "labels": {SERVICE_LABEL: None if pool is None else "true"},
    }


def _carries(stored: dict[str, Any], marks: dict[str, Any]) -> bool:
    """Whether the Service as stored has ``marks`` (None: the key is absent)."""
    md = stored.get("metadata") or {}
    return all(
        (md.get(kind) or {}).get(key) == value
        for kind, wanted in marks.items()
        for key, value in wanted.items()
    )
