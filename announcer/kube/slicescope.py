"""The EndpointSlice mirror, watching the scope ``core.slicescope`` decides.

The scope can change while the node runs (an allocator upgraded or rolled back), so
the mirror is swapped make-before-break: the informer of the new scope lists and
syncs beside the one in use, which keeps serving the decision until the swap; then
every slice either one held is re-decided once, and the old informer stops.

A slice that drops out of the labelled view (its Service lost the label) is read from
the API before the node believes it gone: while it exists and its Service is assigned,
it is held, read again every second, until it is labelled again or gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

from announcer.core import slicescope
from exalb.background import Loop
from exalb.kube.informer import Informer
from exalb.kube.rest import ApiError, Client, resource_path

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
        # Slices that left the labelled view but exist, with their Service still assigned:
        # read from the API every CHECK_EVERY, by key.
        self._held: dict[str, Obj] = {}
        self._log = log.bind(node=node)
        self._loop = Loop("EndpointSlice scope", self._look, CHECK_EVERY, self._log)

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
        found = None if active is None else active.get(key)
        return self._held.get(key) if found is None else found

    def snapshot(self) -> dict[str, Obj]:
        active = self._active
        return {**self._held, **({} if active is None else active.snapshot())}

    # --- lifecycle -------------------------------------------------------
    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(wait=0)
        with self._lock:
            for inf in (self._active, self._candidate):
                if inf is not None:
                    inf.stop()

    def shards_changed(self) -> None:
        self._loop.wake()

    # --- the scope -------------------------------------------------------
    def _look(self) -> float | None:
        if not self._shards.synced.is_set():
            return 0.1  # the first scope is the shards' word: wait for their list, not a timer
        self._step()
        return None

    def _step(self) -> None:
        shards = list(self._shards.snapshot().values())
        self._recheck_held(shards)
        wanted = slicescope.wanted_selector(shards)
        with self._lock:
            if self._loop.stopping():
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
            held, self._held = self._held, {}
        old.stop()
        keys = set(old.snapshot()) | set(new.snapshot()) | set(held)
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

    def _left_view(self, key: str) -> None:
        """A slice left the labelled view: hold it if the API still has it unlabelled."""
        try:
            fetched = self._fetch(key)
        except Exception as exc:  # unreadable: believe the watch, as before the scope
            self._log.warning("could not read an EndpointSlice", endpointslice=key, error=str(exc))
            return
        if fetched is not None:
            self._held[key] = fetched

    def _recheck_held(self, shards: list[Obj]) -> None:
        """Each held slice, read again: kept, or let go (labelled again, gone, unassigned)."""
        if not self._held:
            return
        assigned = slicescope.assigned_services(shards)
        for key, was in list(self._held.items()):
            now = self._fetch(key)
            active = self._active
            back = active is not None and active.get(key) is not None
            if now is None or back or not slicescope.keep_unlabelled(now["service"], assigned):
                del self._held[key]
                self._log.info("let go of a held EndpointSlice", endpointslice=key, labelled=back)
            else:
                self._held[key] = now
            if now is None or now["metadata"] != was["metadata"]:
                self._on_change(key)

    def _fetch(self, key: str) -> Obj | None:
        """The slice as the API has it now, transformed; None if it is gone.

        From the API server's watch cache (resourceVersion 0): the same cache the watch
        that reported the change reads, so at least as new, and no read of etcd per node.
        """
        namespace, _, name = key.partition("/")
        try:
            obj = self._api.get(
                resource_path("discovery.k8s.io/v1", "endpointslices", namespace, name),
                {"resourceVersion": "0"},
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return self._transform(obj)

    def _drop_candidate(self) -> None:
        if self._candidate is not None:
            self._candidate.stop()
            self._candidate = None
            self._pending = -1

    def _informer(self, selector: str | None) -> Informer:
        """Not started: the caller makes it active or the candidate first."""

        def changed(key: str, obj: Obj | None) -> None:
            if inf is not self._active:
                return
            if obj is None and selector is not None:
                self._left_view(key)  # before the decision hears of it: no gap
            elif obj is not None and self._held.pop(key, None) is not None:
                self._log.info("a held EndpointSlice is labelled again", endpointslice=key)
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
