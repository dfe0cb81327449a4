"""Kubernetes Events, recorded off the hot path and de-duplicated.

Events are how an operator learns from ``kubectl describe`` why a Service is
pending. They are written by one background thread so a slow API server
never stalls a reconcile, and the same (object, reason, message) within the
aggregation window bumps ``count`` on the existing Event instead of
creating a new one, like client-go's recorder. It writes through
``exalb.kube.rest``, so the announcers record Events the same way as the
allocator. A recorder given the lease's
``validity`` writes only while it is valid (see ``retry.fenced``): Events are
writes too, and a deposed allocator must not tell a Service a story the new
leader contradicts.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from . import retry
from .rest import ApiError, Client, resource_path

log = structlog.get_logger("events")


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str = "v1"
    resource_version: str = ""


@dataclass(frozen=True)
class Event:
    ref: ObjectRef
    type: str  # Normal | Warning
    reason: str
    message: str


class EventRecorder:
    def __init__(
        self,
        api: Client,
        component: str,
        host: str = "",
        window: float = 600.0,
        max_queue: int = 10000,
        validity: Callable[[], float] | None = None,
    ) -> None:
        self._api = api
        self._validity = validity
        self._component = component
        self._host = host
        self._window = window
        self._q: queue.Queue[Event] = queue.Queue(max_queue)
        self._seen: dict[str, tuple[str, int, float]] = {}  # key -> (event name, count, first)
        # Names are unique to this process, as client-go's are: a restarted process would
        # otherwise meet its predecessor's Event (409) and its story would stop there.
        self._salt = os.urandom(4).hex()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> EventRecorder:
        self._thread.start()
        return self

    def record(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        try:
            self._q.put_nowait(Event(ref, type_, reason, message[:1024]))
        except queue.Full:
            log.warning("event queue full; event not recorded", reason=reason, object=ref.name)

    def flush(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._q.empty() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _run(self) -> None:
        while True:
            ev = self._q.get()
            try:
                self._write(ev)
            except Exception as exc:
                log.warning(
                    "event not recorded", reason=ev.reason, object=ev.ref.name, error=str(exc)
                )

    def _write(self, ev: Event) -> None:
        now = datetime.now(UTC)
        key = hashlib.sha1(f"{ev.ref.uid}|{ev.type}|{ev.reason}|{ev.message}".encode()).hexdigest()[
            :16
        ]
        seen = self._seen.get(key)
        ns = ev.ref.namespace or "default"

        def path(name: str | None = None) -> str:
            return resource_path("v1", "events", ns, name)

        if seen and time.monotonic() - seen[2] < self._window:
            name, count, first = seen
            body: dict[str, Any] = {"count": count + 1, "lastTimestamp": now.isoformat()}
            try:
                self._send(lambda t: self._api.patch(path(name), body, **_once(t)))
                self._seen[key] = (name, count + 1, first)
                return
            except ApiError as exc:
                if exc.status != 404:
                    raise
        name = f"{ev.ref.name}.{key}{self._salt}"
        event: Any = {
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "kind": ev.ref.kind,
                "namespace": ev.ref.namespace or None,
                "name": ev.ref.name,
                "uid": ev.ref.uid,
                "apiVersion": ev.ref.api_version,
                "resourceVersion": ev.ref.resource_version or None,
            },
            "reason": ev.reason,
            "message": ev.message,
            "type": ev.type,
            "source": {"component": self._component, "host": self._host or None},
            "reportingComponent": self._component,
            "reportingInstance": self._host or self._component,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        try:
            self._send(lambda t: self._api.create(path(), event, **_once(t)))
        except ApiError as exc:
            if exc.status != 409:
                raise
        self._seen[key] = (name, 1, time.monotonic())
        if len(self._seen) > 20000:
            cutoff = time.monotonic() - self._window
            self._seen = {k: v for k, v in self._seen.items() if v[2] >= cutoff}

    def _send(self, send: Callable[[float], Any]) -> None:
        if self._validity is None:
            retry.call(lambda: send(retry.WRITE_TIMEOUT))
        else:
            retry.fenced(send, self._validity)


def _once(timeout: float) -> dict[str, Any]:
    """One HTTP attempt with this timeout: the retry policy is the caller's."""
    return {"timeout": timeout, "retry_connection": False}
