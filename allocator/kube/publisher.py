"""The only writer of the shared assignments ConfigMaps.

A dedicated thread owns every ConfigMap write ("one writer per external
thing"): reconciles hand it the latest desired entries and return at once;
the thread always writes the newest desired state, skipping intermediate
ones. Updates carry the resourceVersion it last saw, so a concurrent edit
(someone's ``kubectl edit``, or a leader it did not know of) is a 409 that
makes it re-read and converge instead of overwriting blindly. New shards are
written before old ones shed entries, so readers never miss an entry.

Both sides work on changes, not on every shard: ``publish`` hands over only
the entries whose JSON changed (a record object seen before is not even
re-encoded), and the writer keeps its shard layout between passes, applies
those changes to it, and compares with the mirror only the shards that changed
or whose mirror object is not the one it last wrote or checked. A full layout
happens on start, when the shard count must grow, and a full comparison every
30 s of quiet (the level-triggered safety net).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from exalb.assignments import (
    LABEL,
    SCHEMA_KEY,
    SHARD_BUDGET,
    Assignment,
    encode,
    layout,
    shard_count,
    shard_of,
)
from exalb.assignments.slicescope import SCOPE_ANNOTATION, SLICE_SELECTOR, declared_selector
from exalb.kube import retry
from exalb.kube.informer import Informer
from exalb.kube.rest import ApiError, Client, resource_path

log = structlog.get_logger("allocator.publisher")


class Publisher:
    def __init__(
        self,
        api: Client,
        namespace: str,
        prefix: str,
        mirror: Informer,
        validity: Callable[[], float],
        # (shards, bytes per shard, shards written, bytes written) after each write
        on_written: Callable[[int, list[int], int, int], None] | None = None,
        owners: list[dict[str, Any]] | None = None,
    ) -> None:
        self._api = api
        self._owners = owners or []  # ownerReferences of every shard (exalb.kube.owner)
        self._ns = namespace
        self._prefix = prefix
        self._mirror = mirror
        self._validity = validity
        self._on_written = on_written
        self._cv = threading.Condition()
        # publish() side (the reconcile thread): what it last handed over
        self._encoded: dict[str, tuple[Assignment, str]] = {}  # entry key -> (record, JSON)
        # handed over, not yet taken by the writer: entry key -> JSON, None to remove
        self._changes: dict[str, str | None] = {}
        self._generation = 0  # of the changes handed over
        self._done_generation = 0  # of the last changes written in full
        # writer side (its thread only)
        self._desired: dict[str, str] = {}  # every entry, as JSON
        self._shards: list[dict[str, str]] | None = None  # laid out, index = shard number
        self._sizes: list[int] = []  # bytes of data per shard
        self._touched: set[int] = set()  # shards changed since they last matched the mirror
        self._matched: dict[int, object] = {}  # shard -> mirror object known to match it
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="configmap-writer", daemon=True)
        self.last_error: str | None = None

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=10)

    def publish(
        self, entries: Mapping[str, Assignment], touched: Iterable[str] | None = None
    ) -> None:
        """Hand over the desired entries.

        Only what changed is handed over; the writer folds it into what it has, so
        changes handed over while it writes are coalesced, never lost. ``touched``, when
        given, names every entry key that may differ from the last call (the others are
        not even looked at).
        """
        cache = self._encoded
        changes: dict[str, str | None] = {}
        for k in entries if touched is None else touched:
            a = entries.get(k)
            if a is None:
                if cache.pop(k, None) is not None:
                    changes[k] = None
                continue
            hit = cache.get(k)
            if hit is None or hit[0] is not a:
                raw = encode(a)
                if hit is None or hit[1] != raw:
                    changes[k] = raw
                cache[k] = (a, raw)
        if touched is None and len(cache) != len(entries):
            for gone in [k for k in cache if k not in entries]:
                del cache[gone]
                changes[gone] = None
        with self._cv:
            self._changes.update(changes)
            self._generation += 1
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                news = self._cv.wait_for(
                    lambda: self._stop or self._generation > self._done_generation, timeout=30
                )
                if self._stop:
                    return
                gen, changes, self._changes = self._generation, self._changes, {}
            if gen == 0:
                continue  # nothing published yet: no state to converge to
            if not news:
                self._matched.clear()  # quiet for a while: compare every shard again
            try:
                self._apply(changes)
                self._converge()
                self.last_error = None
                with self._cv:
                    self._done_generation = max(self._done_generation, gen)
                    self._cv.notify_all()
            except Exception as exc:
                self.last_error = str(exc)[:300]
                log.warning("assignments ConfigMap write failed; will retry", error=self.last_error)
                with self._cv:
                    self._cv.wait(timeout=0.5)

    def _name(self, i: int) -> str:
        return f"{self._prefix}-{i}"

    def _apply(self, changes: dict[str, str | None]) -> None:
        """Fold handed-over changes into the desired entries and, if laid out, the shards."""
        desired, shards, sizes = self._desired, self._shards, self._sizes
        for k, raw in changes.items():
            old = desired.pop(k, None) if raw is None else desired.get(k)
            if raw is not None:
                desired[k] = raw
            if shards is None:
                continue
            i = shard_of(k, len(shards))
            if old is not None:
                sizes[i] -= len(k) + len(old)
            if raw is None:
                shards[i].pop(k, None)
            else:
                shards[i][k] = raw
                sizes[i] += len(k) + len(raw)
            self._touched.add(i)

    def _relayout(self, at_least: int) -> None:
        """Lay every entry out again, on the fewest shards (at least ``at_least``) that fit."""
        count = shard_count(self._desired, at_least=at_least)
        self._shards = layout(self._desired, count)
        self._sizes = [sum(len(k) + len(v) for k, v in d.items()) for d in self._shards]
        self._touched = set(range(count))
        self._matched.clear()
        log.info("assignments laid out", shards=count, entries=len(self._desired))

    def _converge(self) -> None:
        current = {obj["metadata"]["name"]: obj for obj in self._mirror.snapshot().values()}
        existing = 0
        while self._name(existing) in current:
            existing += 1
        # The shard count only grows: more shards than we know of (a previous leader's)
        # or a shard over budget means laying everything out again.
        if self._shards is None or existing > len(self._shards) or max(self._sizes) > SHARD_BUDGET:
            self._relayout(max(existing, len(self._shards or ()), 1))
        wanted = self._shards
        assert wanted is not None
        creates, updates = [], []
        for i, data in enumerate(wanted):
            obj = current.get(self._name(i))
            if obj is None:
                creates.append(i)
            elif i not in self._touched and self._matched.get(i) is obj:
                continue  # unchanged on both sides since they last matched
            elif (obj.get("data") or {}) != data or not _declares_scope(obj):
                updates.append(i)
            else:
                self._matched[i] = obj
                self._touched.discard(i)
        # Additions land before removals: a Service moving shard is never absent.
        for i in creates + updates:
            self._matched[i] = self._write(i, wanted[i], current.get(self._name(i)))
            self._touched.discard(i)
        if (creates or updates) and self._on_written:
            written = creates + updates
            self._on_written(
                len(wanted), list(self._sizes), len(written), sum(self._sizes[i] for i in written)
            )

    def _write(
        self, i: int, data: dict[str, str], obj: dict[str, object] | None
    ) -> dict[str, object]:
        name = self._name(i)
        body: Any = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": self._ns,
                "labels": {LABEL: "true", "app.kubernetes.io/managed-by": "exalb-allocator"},
                "annotations": {"exalb.io/shard": str(i), SCOPE_ANNOTATION: SLICE_SELECTOR},
                **({"ownerReferences": self._owners} if self._owners else {}),
            },
            "data": data,
        }
        collection = resource_path("v1", "configmaps", self._ns)
        try:
            if obj is None:
                resp = retry.fenced(
                    lambda t: self._api.create(collection, body, timeout=t, retry_connection=False),
                    self._validity,
                )
            else:
                md = obj["metadata"]
                assert isinstance(md, dict)
                body["metadata"]["resourceVersion"] = md["resourceVersion"]
                resp = retry.fenced(
                    lambda t: self._api.replace(
                        f"{collection}/{name}", body, timeout=t, retry_connection=False
                    ),
                    self._validity,
                )
        except ApiError as exc:
            if exc.status in (404, 409, 422):
                # Someone else changed it (or it vanished): re-read, recompute, retry.
                self._refresh(name)
            raise
        # Creates and replaces carry a precondition (name / resourceVersion), so the
        # response holds our change and nothing else: no reconcile needed for it.
        stored = self._mirror.observe(resp, notify=False)
        log.debug(
            "wrote assignments shard",
            shard=name,
            entries=len(data) - 1,
            schema=data.get(SCHEMA_KEY),
        )
        return stored

    def _refresh(self, name: str) -> None:
        try:
            now = self._api.get(resource_path("v1", "configmaps", self._ns, name))
        except ApiError:
            return
        self._mirror.observe(now)


def _declares_scope(obj: dict[str, Any]) -> bool:
    """Whether a shard already tells its readers that assigned Services are labelled.

    A shard an older allocator wrote does not, and is written again with the same data.
    """
    md = obj.get("metadata") or {}
    return declared_selector(md.get("annotations")) is not None
