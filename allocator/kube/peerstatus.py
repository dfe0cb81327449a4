"""BGPPeer ``status``: watched inputs in, a status patch out, only while leader.

Three informers feed the pure decision (``allocator.core.peerstatus``): the BGPPeers of
exalb's namespace, the labels of every Node, and the BGPSessionStatus each announcer
writes for its node, of which only ``status.unusablePeers`` (the allocator may not read
the password Secrets, so the announcers say which peers they cannot use) and each
session's state and NOTIFICATIONs are kept: counters change on every write and would
otherwise cost a pass each. The status written is the conditions and how many selected
nodes have the session established (``established: 2/3``, shown by ``kubectl get``).

A pass recomputes every peer's conditions and patches only those that differ from what
the peer shows. Each patch names the resourceVersion it was computed from, so a
deposed leader's late write fails instead of overwriting the new leader's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from allocator.core.peerstatus import PeerStatus, peer_status
from allocator.metrics import AllocatorMetrics
from exalb.background import Loop
from exalb.conditions import with_transitions
from exalb.kube import retry
from exalb.kube.informer import Informer
from exalb.kube.rest import ApiError, Client, resource_path

GROUP, VERSION, PEERS = "exalb.io", "v1alpha1", "bgppeers"
SESSION_STATUSES = "bgpsessionstatuses"
SESSION_FIELDS = (
    "state",
    "since",
    "lastError",
    "endedBy",
    "lastNotificationReceived",
    "lastNotificationSent",
)
COUNTS = ("established", "nodesEstablished", "nodesSelected")
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
        "status": {
            "conditions": status.get("conditions") or [],
            **{k: status[k] for k in COUNTS if k in status},
        },
    }


def slim_node(obj: Obj) -> Obj:
    return {"metadata": _meta(obj, "labels")}


def slim_session_status(obj: Obj) -> Obj:
    status = obj.get("status") or {}
    unusable = status.get("unusablePeers") or []
    return {
        "metadata": _meta(obj),
        "unusable": {str(p.get("name")): str(p.get("reason")) for p in unusable},
        "sessions": {
            str(p.get("name")): {k: p[k] for k in SESSION_FIELDS if k in p}
            for p in status.get("peers") or []
        },
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
        self._node_labels: dict[str, Obj] = {}
        self.peers = Informer(
            "bgppeers",
            api.lister(resource_path(f"{GROUP}/{VERSION}", PEERS, namespace)),
            lambda _k, _o: self._loop.wake(),
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
        self._reports: dict[str, tuple[dict[str, str], dict[str, Obj]]] = {}
        self._informers = (self.peers, self.nodes, self.session_statuses)
        self._loop = Loop(
            "peer status", self._pass, RESYNC, log, min_gap=MIN_INTERVAL, after_error=MIN_INTERVAL
        )

    def start(self) -> PeerStatusSync:
        for inf in self._informers:
            inf.start()
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()
        for inf in self._informers:
            inf.stop()

    def kick(self) -> None:
        """Run a pass soon: leadership was gained (a standby has written nothing)."""
        self._loop.wake()

    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self._informers)

    def _node_changed(self, key: str, obj: Obj | None) -> None:
        # Nodes change often (status); only their labels matter here.
        self._record(
            self._node_labels, key, None if obj is None else obj["metadata"].get("labels") or {}
        )

    def _reports_changed(self, key: str, obj: Obj | None) -> None:
        # Each announcer rewrites its status as its sessions change; only its unusable
        # peers and its sessions' states matter here (slim_session_status).
        value = None if obj is None else (obj["unusable"], obj["sessions"])
        self._record(self._reports, key, value)

    def _record(self, seen: dict[str, Any], key: str, value: Any) -> None:
        """Remember ``value`` (None: deleted) for ``key``; a pass is due only if it changed."""
        if seen.get(key) == value:
            return
        if value is None:
            seen.pop(key, None)
        else:
            seen[key] = value
        self._loop.wake()

    def _pass(self) -> float | None:
        if self.synced() and self._may_write() and not self.sync_once():
            return MIN_INTERVAL  # a write failed: try again after the pause
        return None

    def sync_once(self) -> bool:
        """One pass over every peer; False when a write failed."""
        nodes = {
            n["metadata"]["name"]: n["metadata"].get("labels") or {}
            for n in self.nodes.snapshot().values()
        }
        statuses = self.session_statuses.snapshot().values()
        reports = {s["metadata"]["name"]: s["unusable"] for s in statuses}
        sessions = {s["metadata"]["name"]: s["sessions"] for s in statuses}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ok = True
        for peer in self.peers.snapshot().values():
            md = peer["metadata"]
            decided = peer_status(
                md["name"], peer["spec"], self._secrets_ns, nodes, reports, sessions
            )
            wanted = _status_body(peer["status"], decided, int(md.get("generation", 0)), now)
            if wanted == peer["status"]:
                continue
            if not self._may_write():
                return True  # not ours to write any more
            ok = self._write(peer, wanted) and ok
        return ok

    def _write(self, peer: Obj, status: Obj) -> bool:
        md = peer["metadata"]
        path = resource_path(f"{GROUP}/{VERSION}", PEERS, self._ns, md["name"]) + "/status"
        body = {"metadata": {"resourceVersion": md["resourceVersion"]}, "status": status}
        conditions = status["conditions"]
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
            established=status["established"],
            **{c["type"]: f"{c['status']}/{c['reason']}" for c in conditions},
        )
        return True

    def _failed(self, peer: str, exc: Exception) -> None:
        self._metrics.write_errors.labels("BGPPeer").inc()
        log.warning("peer status write failed", peer=peer, error=retry.describe(exc))


def _status_body(current: Obj, decided: PeerStatus, generation: int, now: str) -> Obj:
    """The peer's whole status as the allocator writes it (``current``: as it shows now)."""
    return {
        "conditions": with_transitions(current["conditions"], decided.conditions, generation, now),
        "established": decided.summary,
        "nodesEstablished": decided.established,
        "nodesSelected": decided.selected,
    }
