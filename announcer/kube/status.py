"""Per-node session status in Kubernetes, written rarely and only when it changed.

One ``BGPSessionStatus`` per node (named after it) so ``kubectl get bgpsessionstatuses``
answers "which node has which session up" without a metrics stack. Writes are
rate-limited to one per interval per node (a 5,000-node cluster at 10 s is 500
writes/s worst case, so large clusters turn it off with interval 0), skipped
when nothing but timestamps changed, and never block announcing: failures are
logged and retried at the next interval.

Each object is owned by its Node (``metadata.ownerReferences``; a namespaced
dependent may have a cluster-scoped owner), so kube-controller-manager's garbage
collector deletes it with the Node and nothing else has to clean up after deleted
nodes. ``blockOwnerDeletion`` is left unset: node deletion must never wait on a
status object (and setting it needs update on ``nodes/finalizers``). Once its Node has
been seen and then deleted, the writer stops re-creating the object, which would
otherwise undo the collection while this announcer is still running.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from exalb.background import Loop
from exalb.conditions import with_transitions
from exalb.kube import retry
from exalb.kube.rest import ApiError, Client, resource_path
from exalb.sessionstatus import node_conditions

from .sources import GROUP, VERSION

PLURAL = "bgpsessionstatuses"
MIN_GAP = 0.5  # seconds between writes: a burst of session events costs one or two
log = structlog.get_logger("status")

Obj = dict[str, Any]
Snapshot = Callable[[], dict[str, Any]]  # -> the ``status`` body, without ``updated``


class NodeGone(Exception):
    """Our Node existed and was deleted: re-creating its status would resurrect garbage."""


class StatusWriter:
    def __init__(
        self, api: Client, namespace: str, node: str, snapshot: Snapshot, interval: float
    ) -> None:
        self._api = api
        self._ns = namespace
        self._node = node
        self._path = resource_path(f"{GROUP}/{VERSION}", PLURAL, namespace, node)
        self._snapshot = snapshot
        self._interval = interval
        self._last: dict[str, Any] | None = None
        self._conditions: list[Obj] = []  # as last written, for their transition times
        self._uid: str | None = None  # our Node's, once seen
        self._gone = False  # the Node was seen, then found deleted
        self._owned = False  # the object on the server carries our owner reference
        self._log = log.bind(node=node)
        self._loop = Loop(
            "status write",
            self._write_due,
            interval,
            self._log,
            min_gap=MIN_GAP,
            after_error=interval,
        )

    def start(self) -> StatusWriter:
        if self._interval > 0:
            self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop(wait=0)

    def wake(self) -> None:
        """A session changed state or a NOTIFICATION came: write now, not at the interval.

        What the router said is worth the most while it is fresh; ``MIN_GAP`` still
        bounds the writes of a flapping session.
        """
        self._loop.wake()

    def _write_due(self) -> float | None:
        self.write_once()
        return None  # due again after the interval, or when woken

    def write_once(self) -> bool:
        """Write the status if it changed (or the owner reference is missing and now known)."""
        status = self._snapshot()
        if status == self._last and (self._owned or self._owner_uid() is None):
            return False
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        unusable = {str(u["name"]): str(u["reason"]) for u in status.get("unusablePeers", [])}
        wanted = node_conditions(status.get("peers", []), unusable)
        conditions = with_transitions(self._conditions, wanted, None, now)
        stamped = {**status, "conditions": conditions, "updated": now}
        try:
            retry.call(lambda: self._write(stamped), attempts=3, max_seconds=5)
        except NodeGone:
            self._log.info("node deleted; not re-creating its session status")
            self._last = status
            return False
        self._last = status
        self._conditions = conditions
        return True

    # --- writing -----------------------------------------------------------
    def _write(self, status: Obj) -> None:
        uid = None if self._owned else self._owner_uid()
        if uid is not None:
            self._adopt(status, uid)
            return
        try:
            self._api.patch(self._path, {"status": status})
        except ApiError as exc:
            if exc.status != 404:
                raise
            self._create(status)

    def _adopt(self, status: Obj, uid: str) -> None:
        """Write ``status`` and make sure the object names our Node among its owners.

        Read first so owner references someone else added survive (a merge patch replaces
        the whole list); the resourceVersion makes a concurrent change fail (409) rather
        than be overwritten, and the next interval tries again.
        """
        try:
            current = self._api.get(self._path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            self._create(status)
            return
        md = current.get("metadata") or {}
        refs = list(md.get("ownerReferences") or [])
        patch: Obj = {"status": status}
        if not any(r.get("uid") == uid for r in refs):
            patch["metadata"] = {
                "resourceVersion": md.get("resourceVersion"),
                "ownerReferences": _with_owner(refs, self._owner_ref(uid)),
            }
        self._api.patch(self._path, patch)
        self._owned = True

    def _create(self, status: Obj) -> None:
        # The object is missing: perhaps the collector removed it because our Node was
        # deleted (and maybe re-created under the same name), so look the Node up afresh.
        self._owned = False
        uid = self._lookup_node()
        if uid is None and self._gone:
            raise NodeGone(self._node)
        metadata: Obj = {"name": self._node}
        if uid is not None:
            metadata["ownerReferences"] = [self._owner_ref(uid)]
        else:
            self._log.info("node not found; writing status without an owner for now")
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BGPSessionStatus",
            "metadata": metadata,
            "status": status,
        }
        self._api.create(resource_path(f"{GROUP}/{VERSION}", PLURAL, self._ns), body)
        self._owned = uid is not None

    # --- the owner ---------------------------------------------------------
    def _owner_uid(self) -> str | None:
        """Our Node's uid: cached once seen, looked up again while unknown or gone."""
        if self._uid is not None and not self._gone:
            return self._uid
        return self._lookup_node()

    def _lookup_node(self) -> str | None:
        """GET our Node; None when it does not exist or cannot be read right now.

        A failure here never stops the status write: the object is written without its
        owner and the reference is added at a later interval.
        """
        try:
            node = self._api.get(resource_path("v1", "nodes", name=self._node))
        except ApiError as exc:
            if exc.status == 404:
                self._gone = self._uid is not None
            else:
                self._log.warning("cannot read own node", error=retry.describe(exc))
            return None
        self._uid = str(node["metadata"]["uid"])
        self._gone = False
        return self._uid

    def _owner_ref(self, uid: str) -> Obj:
        return {"apiVersion": "v1", "kind": "Node", "name": self._node, "uid": uid}


def _with_owner(refs: list[Obj], owner: Obj) -> list[Obj]:
    """``refs`` with ``owner`` in place of any reference to an earlier Node of that name."""
    same_node = {"apiVersion": "v1", "kind": "Node", "name": owner["name"]}
    kept = [r for r in refs if any(r.get(k) != v for k, v in same_node.items())]
    return [*kept, owner]
