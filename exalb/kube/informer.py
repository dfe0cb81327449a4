"""A list+watch mirror of one resource, as plain dicts, with resume and relist.

Why not the client's ``watch.Watch``: it deserialises every object into
generated model classes, which costs milliseconds per object at 10,000
Services; the reconcilers only need dicts. The mirror is what the API said
last (level-triggered consumers recompute from it), it resumes a watch from
the last resourceVersion (bookmarks included) and relists on 410 Gone. When
the API is unreachable the mirror keeps the last state it saw and retries
with capped, jittered backoff; consumers keep working from it (never
"everything was deleted because the API is down").
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import structlog

from .retry import describe, status_of

Obj = dict[str, Any]
OnChange = Callable[[str, Obj | None], None]

log = structlog.get_logger("informer")

FIRST_RETRY = 0.2  # seconds: a single dropped watch is back at once
# Seconds without a failure after which the next one starts the schedule over, as
# client-go's reflectors do after 2 min: a watch that ran for minutes before it broke
# is not a failure in a row with an outage long gone.
CALM = 120.0

# How long a written object may stay ahead of the watch before the watch's word wins again
# (only if the watch delivered the write's event before the writer reported it).
AHEAD_SECONDS = 10.0


class WatchStream(Protocol):
    """The events of one watch request (``{"type": ..., "object": ...}`` dicts)."""

    def __iter__(self) -> Iterator[Obj]: ...

    def abort(self) -> None:
        """Wake the thread iterating this stream (called from another thread)."""

    def close(self) -> None: ...


class ListWatch(Protocol):
    """All the informer needs from a client: one collection, listed in pages and watched."""

    def list(self, limit: int, continue_token: str | None = None) -> Obj:
        """One page: the API's ``*List`` object (``items``, ``metadata.continue``)."""
        ...

    def watch(self, resource_version: str, timeout_seconds: int) -> WatchStream:
        """Events after ``resource_version``, bookmarks included."""
        ...


def key_of(obj: Obj) -> str:
    md = obj.get("metadata", {})
    ns = md.get("namespace")
    return f"{ns}/{md['name']}" if ns else str(md["name"])


def retry_delay(failures: int, ceiling: float) -> float:
    """How long to wait after the ``failures``-th failure in a row: doubling, capped, jittered.

    Every node's informers fail together when the API server is down or starved, so a
    fixed schedule would bring them all back at the same instants. The delay is drawn
    from the upper half of the doubled step (never below half of it: a long outage
    keeps the retry rate down), and the ceiling, like client-go's reflectors', is 30 s.
    """
    step = min(FIRST_RETRY * 2 ** min(failures - 1, 30), ceiling)
    return random.uniform(step / 2, step)


class RetrySchedule:
    """Failures in a row, and the delay each one earns; a calm spell starts it over."""

    def __init__(self, ceiling: float) -> None:
        self._ceiling = ceiling
        self.failures = 0
        self._last = float("-inf")

    def failed(self, now: float) -> float:
        """Count a failure at ``now`` (monotonic seconds); the delay before the next try."""
        if now - self._last > CALM:
            self.failures = 0
        self.failures += 1
        self._last = now
        return retry_delay(self.failures, self._ceiling)

    def succeeded(self) -> None:
        self.failures = 0


class Gone(Exception):
    """The watch's resourceVersion is too old (410): relist."""


class Informer:
    """Mirror of a collection; calls ``on_change(key, obj|None)`` on each change."""

    def __init__(
        self,
        name: str,
        lister: ListWatch,
        on_change: OnChange | None = None,
        watch_timeout: int = 300,
        max_backoff: float = 30.0,
        page_size: int = 500,
        transform: Callable[[Obj], Obj] | None = None,
    ) -> None:
        self.name = name
        # Like client-go's SetTransform: keep only what the consumer reads (managedFields
        # alone is often half an object), which is most of a controller's memory at scale.
        self._transform = transform or (lambda o: o)
        self._lister = lister
        self._on_change = on_change
        self._watch_timeout = watch_timeout
        self._max_backoff = max_backoff
        self._page = page_size
        self._lock = threading.Lock()
        self._store: dict[str, Obj] = {}
        # key -> (resourceVersion, when) of an object a write returned that the watch has
        # not delivered yet: until it does, the mirror shows the write's object.
        self._ahead: dict[str, tuple[str, float]] = {}
        # key -> the last version the watch delivered while the key was ahead.
        self._passed: dict[str, str] = {}
        self._rv = ""
        self.synced = threading.Event()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: WatchStream | None = None
        self._log = log.bind(informer=name)

    # --- reading ---------------------------------------------------------
    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._store.get(key)

    def snapshot(self) -> dict[str, Obj]:
        with self._lock:
            return dict(self._store)

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    def observe(self, obj: Obj, notify: bool = True) -> Obj:
        """Fold in an object a write (or a re-read) just returned.

        The watch would deliver it a moment later; taking it now stops a reconcile
        from acting twice on a state it already changed. Resource versions are
        opaque, so "newer" is never decided by comparing them: the object shown is
        this one until the watch delivers this same version (the events before it,
        for this key, are older; those after it are newer). A writer that knows the
        response holds nothing but its own change passes ``notify=False``, so its
        write does not trigger a needless reconcile. Returns the object as stored.
        """
        stored = self._transform(obj)
        key = key_of(obj)
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        with self._lock:
            shown = (self._store.get(key) or {}).get("metadata", {}).get("resourceVersion")
            delivered = self._passed.get(key) if key in self._ahead else shown
            if rv and rv != delivered:
                self._ahead[key] = (rv, time.monotonic())
            else:  # the watch has delivered this version already: nothing to wait for
                self._ahead.pop(key, None)
                self._passed.pop(key, None)
            self._store[key] = stored
        if self._on_change and notify:
            self._on_change(key, stored)
        return stored

    # --- lifecycle -------------------------------------------------------
    def start(self) -> Informer:
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching. Never blocks: the thread is a daemon and exits on its own."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.abort()  # the reader wakes up and sees the stop flag

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self.synced.wait(timeout)

    def _run(self) -> None:
        retries = RetrySchedule(self._max_backoff)
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch()
                retries.succeeded()
            except Gone:
                self._log.info("watch expired (410), relisting")
                need_list = True
            except Exception as exc:
                if self._stop.is_set():
                    return
                self.last_error = describe(exc)
                if status_of(exc) == 410:
                    need_list = True
                delay = retries.failed(time.monotonic())
                self._log.warning(
                    "list/watch failed; keeping last known state",
                    error=self.last_error,
                    failures=retries.failures,
                    retry_in=round(delay, 2),
                )
                self._stop.wait(delay)

    def _relist(self) -> None:
        items: list[Obj] = []
        cont: str | None = None
        rv = ""
        while True:
            body = self._lister.list(self._page, cont)
            kind = body.get("kind", "").removesuffix("List")
            api_version = body.get("apiVersion", "")
            # Project each page as it arrives: holding every full object until the end
            # made the peak (and, through allocator fragmentation, the steady RSS) that
            # of the unprojected list.
            for it in body.get("items", []):
                it.setdefault("kind", kind)
                it.setdefault("apiVersion", api_version)
                items.append(self._transform(it))
            meta = body.get("metadata", {})
            rv = meta.get("resourceVersion", rv)
            cont = meta.get("continue")
            if not cont:
                break
        fresh = {key_of(it): it for it in items}
        with self._lock:
            old = self._store
            self._store = fresh
            self._ahead.clear()  # a list is the API's word on every object
            self._passed.clear()
            self._rv = rv
        changed = [
            k
            for k, v in fresh.items()
            if old.get(k, {}).get("metadata", {}).get("resourceVersion")
            != v["metadata"].get("resourceVersion")
        ]
        removed = [k for k in old if k not in fresh]
        self.last_error = None
        self.synced.set()
        self._log.debug("listed", objects=len(fresh), changed=len(changed), removed=len(removed))
        if self._on_change:
            for k in changed:
                self._on_change(k, fresh[k])
            for k in removed:
                self._on_change(k, None)

    def _watch(self) -> None:
        stream = self._lister.watch(self._rv, self._watch_timeout)
        self._stream = stream
        try:
            for event in stream:
                if self._stop.is_set():
                    return
                etype = event.get("type")
                obj = event.get("object", {})
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise RuntimeError(f"watch error: {obj.get('message')}")
                rv = obj.get("metadata", {}).get("resourceVersion")
                if rv:
                    self._rv = rv
                self.last_error = None
                if etype != "BOOKMARK":
                    self._apply(key_of(obj), None if etype == "DELETED" else obj, rv or "")
        finally:
            self._stream = None
            stream.close()

    def _apply(self, key: str, obj: Obj | None, rv: str) -> None:
        """One watch event; events older than an object a write showed us change nothing."""
        with self._lock:
            ahead = self._ahead.get(key)
            if ahead is not None and obj is not None:
                if rv == ahead[0]:
                    del self._ahead[key]  # the watch caught up with our write
                    self._passed.pop(key, None)
                    return
                if time.monotonic() - ahead[1] < AHEAD_SECONDS:
                    self._passed[key] = rv
                    return  # older than what the mirror shows
            self._ahead.pop(key, None)
            self._passed.pop(key, None)
            old = self._store.get(key)
            if obj is None:
                if old is None:
                    return
                del self._store[key]
                stored = None
            else:
                stored = self._store[key] = self._transform(obj)
        if self._on_change:
            self._on_change(key, stored)
