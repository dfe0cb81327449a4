"""BGPPeer ``status.conditions``: watched inputs in, a status patch out, only while leader.

Three informers feed the pure decision (``allocator.core.peerstatus``): the BGPPeers of
exalb's namespace, the labels of every Node, and the BGPSessionStatus each announcer
writes for its node, of which only ``status.unusablePeers`` is kept (the allocator may
not read the password Secrets, so the announcers say which peers they cannot use).

A pass recomputes every peer's conditions and patches only those that differ from what
the peer shows. Each patch names the resourceVersion it was computed from, so a
deposed leader's late write fails instead of overwriting the new leader's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from allocator.core.peerstatus import peer_conditions
from allocator.metrics import AllocatorMetrics
from exalb.conditions import with_transitions
from exalb.kube import retry
from exalb.kube.informer import Informer
from exalb.kube.rest import ApiError, Client, resource_path

GROUP, VERSION, PEERS = "exalb.io", "v1alpha1", "bgppeers"
SESSION_STATUSES = "bgpsessionstatuses"
MIN_INTERVAL = 0.5  # seconds between passes: a burst of Node changes costs one pass
RESYNC = 60.0  # a pass even without events, so a failed write is retried

Obj = dict[str, Any]
log = structlog.get_logger("allocator.peerstatus")


def _meta(obj: Obj, *keys: str) -> Obj:
    md = obj.get("metadata") or {}
    return {k: md[k] for k in ("name", "namespace", "resourceVersion", *keys) if k in md}


def slim_peer(obj: Obj) -> Obj:
    status = obj.get("status") or {}
    return {
        "metadata": _meta(obj, "generation"),
        "spec": obj.get("spec") or {},
        "status": {"conditions": status.get("conditions") or []},
    }


def slim_node(obj: Obj) -> Obj:
    return {"metadata": _meta(obj, "labels")}


def slim_session_status(obj: Obj) -> Obj:
    unusable = (obj.get("status") or {}).get("unusablePeers") or []
    return {
        "metadata": _meta(obj),
        "unusable": {str(p.get("name")): str(p.get("reason")) for p in unusable},
    }


class PeerStatusSync:
    """The one writer of BGPPeer conditions; passes run on a thread of their own."""

    def __init__(
        self,
        api: Client,
        namespace: str,
        secrets_namespace: str,
        may_write: Callable[[], bool],
        metrics: AllocatorMetrics,
    ) -> None:
        self._api = api
        self._ns = namespace
        self._secrets_ns = secrets_namespace
        self._may_write = may_write
        self._metrics = metrics
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._node_labels: dict[str, Obj] = {}
        self.peers = Informer(
            "bgppeers",
            api.lister(resource_path(f"{GROUP}/{VERSION}", PEERS, namespace)),
            lambda _k, _o: self._dirty.set(),
            transform=slim_peer,
        )
        self.nodes = Informer(
            "nodes",
            api.lister(resource_path("v1", "nodes")),
            self._node_changed,
            transform=slim_node,
        )
        self.session_statuses = Informer(
            SESSION_STATUSES,
            api.lister(resource_path(f"{GROUP}/{VERSION}", SESSION_STATUSES, namespace)),
            self._reports_changed,
            transform=slim_session_status,
        )
        self._reports: dict[str, dict[str, str]] = {}
        self._informers = (self.peers, self.nodes, self.session_statuses)
        self._thread = threading.Thread(target=self._run, name="peer-status", daemon=True)

    def start(self) -> PeerStatusSync:
        for inf in self._informers:
            inf.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        for inf in self._informers:
            inf.stop()
        self._thread.join(timeout=10)

    def kick(self) -> None:
        """Run a pass soon: leadership was gained (a standby has written nothing)."""
        self._dirty.set()

    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self._informers)

    def _node_changed(self, key: str, obj: Obj | None) -> None:
        # Nodes change often (status); only their labels matter here.
        self._record(
            self._node_labels, key, None if obj is None else obj["metadata"].get("labels") or {}
        )

    def _reports_changed(self, key: str, obj: Obj | None) -> None:
        # Each announcer rewrites its status as its sessions change; only its
        # unusable peers matter here.
        self._record(self._reports, key, None if obj is None else obj["unusable"])

    def _record(self, seen: dict[str, Any], key: str, value: Any) -> None:
        """Remember ``value`` (None: deleted) for ``key``; a pass is due only if it changed."""
        if seen.get(key) == value:
            return
        if value is None:
            seen.pop(key, None)
        else:
            seen[key] = value
        self._dirty.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait(RESYNC)
            self._dirty.clear()
            if self._stop.is_set():
                return
            if self.synced() and self._may_write() and not self.sync_once():
                self._dirty.set()  # a write failed: try again after the pause
            self._stop.wait(MIN_INTERVAL)

    def sync_once(self) -> bool:
        """One pass over every peer; False when a write failed."""
        nodes = {
            n["metadata"]["name"]: n["metadata"].get("labels") or {}
            for n in self.nodes.snapshot().values()
        }
        reports = {
            s["metadata"]["name"]: s["unusable"] for s in self.session_statuses.snapshot().values()
        }
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ok = True
        for peer in self.peers.snapshot().values():
            md = peer["metadata"]
            current = peer["status"]["conditions"]
            wanted = with_transitions(
                current,
                peer_conditions(md["name"], peer["spec"], self._secrets_ns, nodes, reports),
                int(md.get("generation", 0)),
                now,
            )
            if wanted == current:
                continue
            if not self._may_write():
                return True  # not ours to write any more
            ok = self._write(peer, wanted) and ok
        return ok

    def _write(self, peer: Obj, conditions: list[Obj]) -> bool:
        md = peer["metadata"]
        path = resource_path(f"{GROUP}/{VERSION}", PEERS, self._ns, md["name"]) + "/status"
        body = {
            "metadata": {"resourceVersion": md["resourceVersion"]},
            "status": {"conditions": conditions},
        }
        try:
            after = self._api.patch(path, body)
        except ApiError as exc:
            if exc.status in (404, 409):  # deleted or changed since: its watch event follows
                log.debug("peer status not written", peer=md["name"], error=str(exc))
                return True
            self._failed(md["name"], exc)
            return False
        except Exception as exc:
            self._failed(md["name"], exc)
            return False
        self.peers.observe(after, notify=False)
        self._metrics.writes.labels("BGPPeer").inc()
        before = {c.get("type"): c.get("status") for c in peer["status"]["conditions"]}
        statuses = {c["type"]: c["status"] for c in conditions}
        (log.info if before != statuses else log.debug)(
            "peer conditions updated",
            peer=md["name"],
            **{c["type"]: f"{c['status']}/{c['reason']}" for c in conditions},
        )
        return True

    def _failed(self, peer: str, exc: Exception) -> None:
        self._metrics.write_errors.labels("BGPPeer").inc()
        log.warning("peer status write failed", peer=peer, error=retry.describe(exc))
