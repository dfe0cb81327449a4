"""The only writer of the shared assignments ConfigMaps.

A dedicated thread owns every ConfigMap write ("one writer per external
thing"): reconciles hand it the latest desired entries and return at once;
the thread always writes the newest desired state, skipping intermediate
ones. Updates carry the resourceVersion it last saw, so a concurrent edit
(someone's ``kubectl edit``, or a leader it did not know of) is a 409 that
makes it re-read and converge instead of overwriting blindly. New shards are
written before old ones shed entries, so readers never miss an entry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from kubernetes import client

from assignments import LABEL, SCHEMA_KEY, Assignment, encode, layout, shard_count
from kube import retry
from kube.informer import Informer

log = structlog.get_logger("allocator.publisher")


class Publisher:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        prefix: str,
        mirror: Informer,
        may_write: Callable[[], bool],
        on_written: Callable[[int, list[int], int], None] | None = None,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._ns = namespace
        self._prefix = prefix
        self._mirror = mirror
        self._may_write = may_write
        self._on_written = on_written
        self._cv = threading.Condition()
        self._desired: dict[str, str] | None = None
        self._encoded: dict[str, tuple[Assignment, str]] = {}  # entry key -> (record, JSON)
        self._generation = 0
        self._done_generation = 0
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

    def publish(self, entries: Mapping[str, Assignment]) -> int:
        """Hand over the desired entries; returns a generation to wait for."""
        cache = self._encoded
        encoded = {}
        for k, a in entries.items():
            hit = cache.get(k)
            if hit is None or hit[0] is not a:
                hit = (a, encode(a))
                cache[k] = hit
            encoded[k] = hit[1]
        for gone in set(cache) - set(entries):
            del cache[gone]
        with self._cv:
            self._desired = encoded
            self._generation += 1
            self._cv.notify_all()
            return self._generation

    def wait(self, generation: int, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self._done_generation >= generation, timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(
                    lambda: self._stop or self._generation > self._done_generation, timeout=30
                )
                if self._stop:
                    return
                gen, desired = self._generation, self._desired
            if desired is None:
                continue
            try:
                self._converge(desired)
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

    def _converge(self, desired: dict[str, str]) -> None:
        current = {obj["metadata"]["name"]: obj for obj in self._mirror.snapshot().values()}
        existing = 0
        while self._name(existing) in current:
            existing += 1
        shards = shard_count(desired, at_least=max(existing, 1))
        wanted = layout(desired, shards)
        creates, updates = [], []
        for i, data in enumerate(wanted):
            obj = current.get(self._name(i))
            if obj is None:
                creates.append(i)
            elif (obj.get("data") or {}) != data:
                updates.append(i)
        # Additions land before removals: a Service moving shard is never absent.
        for i in creates + updates:
            if not self._may_write():
                raise RuntimeError("not the leader; ConfigMap left as it is")
            self._write(i, wanted[i], current.get(self._name(i)))
        if (creates or updates) and self._on_written:
            sizes = [sum(len(k) + len(v) for k, v in d.items()) for d in wanted]
            self._on_written(shards, sizes, len(creates) + len(updates))

    def _write(self, i: int, data: dict[str, str], obj: dict[str, object] | None) -> None:
        name = self._name(i)
        body: Any = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": self._ns,
                "labels": {LABEL: "true", "app.kubernetes.io/managed-by": "exalb-allocator"},
                "annotations": {"exalb.io/shard": str(i)},
            },
            "data": data,
        }
        resp: Any
        try:
            if obj is None:
                resp = retry.call(
                    lambda: self._core.create_namespaced_config_map(
                        self._ns, body, _preload_content=False, _request_timeout=10
                    )
                )
            else:
                md = obj["metadata"]
                assert isinstance(md, dict)
                body["metadata"]["resourceVersion"] = md["resourceVersion"]
                resp = retry.call(
                    lambda: self._core.replace_namespaced_config_map(
                        name, self._ns, body, _preload_content=False, _request_timeout=10
                    )
                )
        except client.ApiException as exc:
            if exc.status in (409, 422) or exc.status == 404:
                # Someone else changed it (or it vanished): re-read, recompute, retry.
                self._refresh(name)
            raise
        # Creates and replaces carry a precondition (name / resourceVersion), so the
        # response holds our change and nothing else: no reconcile needed for it.
        self._mirror.observe(json.loads(resp.data), notify=False)
        log.debug(
            "wrote assignments shard",
            shard=name,
            entries=len(data) - 1,
            schema=data.get(SCHEMA_KEY),
        )

    def _refresh(self, name: str) -> None:
        try:
            resp: Any = self._core.read_namespaced_config_map(
                name, self._ns, _preload_content=False
            )
            self._mirror.observe(json.loads(resp.data))
        except client.ApiException:
            pass
