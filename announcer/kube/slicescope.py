"""The EndpointSlice mirror, watching the scope ``core.slicescope`` decides.

The scope can change while the node runs (an allocator upgraded or rolled back), so
the mirror is swapped make-before-break: the informer of the new scope lists and
syncs beside the one in use, which keeps serving the decision until the swap; then
every slice either one held is re-decided once, and the old informer stops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from announcer.core import slicescope
from exalb.kube.informer import Informer
from exalb.kube.rest import Client, resource_path

Obj = dict[str, Any]
CHECK_EVERY = 1.0  # seconds between looks at the shards' scope, besides their changes

log = structlog.get_logger("slicescope")


class ScopedSlices:
    """A mirror of EndpointSlices; ``on_change(key)`` hears of changes to the one in use."""

    name = "endpointslices"

    def __init__(
        self,
        api: Client,
        shards: Informer,
        on_change: Callable[[str], None],
        transform: Callable[[Obj], Obj],
        node: str,
    ) -> None:
        self._api, self._shards = api, shards
        self._on_change, self._transform = on_change, transform
        self._lock = threading.Lock()
        self._active: Informer | None = None
        self._active_selector: str | None = None
        self._candidate: Informer | None = None
        self._candidate_selector: str | None = None
        self._pending = -1  # unlabelled slices last reported, so each count is logged once
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slice-scope", daemon=True)
        self._log = log.bind(node=node)

    # --- reading ---------------------------------------------------------
    @property
    def selector(self) -> str | None:
        """The label selector of the mirror in use (None: every EndpointSlice)."""
        return self._active_selector

    def is_synced(self) -> bool:
        """Whether the mirror in use has listed once."""
        active = self._active
        return active is not None and active.synced.is_set()

    def get(self, key: str) -> Obj | None:
        active = self._active
        return None if active is None else active.get(key)

    def snapshot(self) -> dict[str, Obj]:
        active = self._active
        return {} if active is None else active.snapshot()

    # --- lifecycle -------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            for inf in (self._active, self._candidate):
                if inf is not None:
                    inf.stop()

    def shards_changed(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        # The first scope is the shards' word: wait for their list, not for a timer.
        while not self._stop.is_set() and not self._shards.wait_synced(0.1):
            pass
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:
                self._log.exception("choosing the EndpointSlice scope failed; trying again")
            self._wake.wait(CHECK_EVERY)
            self._wake.clear()

    # --- the scope -------------------------------------------------------
    def _step(self) -> None:
        if not self._shards.synced.is_set():
            return
        shards = list(self._shards.snapshot().values())
        wanted = slicescope.wanted_selector(shards)
        with self._lock:
            if self._stop.is_set():
                return
            if self._active is None:
                self._active, self._active_selector = self._informer(wanted), wanted
                self._active.start()
                self._log.info("watching EndpointSlices", selector=wanted or "(all)")
                return
            if wanted == self._active_selector:
                self._drop_candidate()
                return
            if self._candidate is None or self._candidate_selector != wanted:
                self._drop_candidate()
                self._candidate, self._candidate_selector = self._informer(wanted), wanted
                self._candidate.start()
                return
            if not self._candidate.synced.is_set() or not self._may_swap(wanted, shards):
                return
            old, new = self._active, self._candidate
            self._active, self._active_selector = new, wanted
            self._candidate = None
        old.stop()
        keys = set(old.snapshot()) | set(new.snapshot())
        self._log.info(
            "EndpointSlice scope changed", selector=wanted or "(all)", endpointslices=len(new)
        )
        for key in keys:
            self._on_change(key)

    def _may_swap(self, wanted: str | None, shards: list[Obj]) -> bool:
        """Widening always may; narrowing once no assigned Service would lose a slice."""
        if wanted is None:
            return True
        assert self._active is not None and self._candidate is not None
        every = {k: o.get("service") for k, o in self._active.snapshot().items()}
        missing = slicescope.unlabelled(
            slicescope.assigned_services(shards), every, set(self._candidate.snapshot())
        )
        if len(missing) != self._pending:
            self._pending = len(missing)
            if missing:
                self._log.info(
                    "not narrowing yet: slices of assigned Services lack the label",
                    selector=wanted,
                    unlabelled=len(missing),
                    first=missing[:5],
                )
        return not missing

    def _drop_candidate(self) -> None:
        if self._candidate is not None:
            self._candidate.stop()
            self._candidate = None
            self._pending = -1

    def _informer(self, selector: str | None) -> Informer:
        """Not started: the caller makes it active or the candidate first."""

        def changed(key: str, _obj: Obj | None) -> None:
            if inf is self._active:
                self._on_change(key)

        inf = Informer(
            self.name,
            self._api.lister(
                resource_path("discovery.k8s.io/v1", "endpointslices"), label_selector=selector
            ),
            changed,
            transform=self._transform,
        )
        return inf
