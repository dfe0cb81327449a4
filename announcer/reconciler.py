"""The level-triggered loop: any change -> recompute everything -> hand each peer its routes.

One thread recomputes; informer callbacks only set a flag, so a burst of
events (a rollout touching 50 EndpointSlices) costs one recompute per pass,
with no timer: the first event of a burst is acted on at once, the rest are
folded into the next pass. Each peer's :class:`Speaker` then sends only the
difference to what its ExaBGP acknowledged.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

import assignments as contract
from announcer.core.decide import Decision, decide, peers_of_node, ready_at
from announcer.core.model import Endpoint, Node, Options, Peer
from announcer.exabgp.speaker import Speaker
from announcer.kube.convert import node_from, peer_from, slice_endpoints
from announcer.kube.sources import View
from announcer.metrics import Metrics

log = structlog.get_logger("reconciler")


@dataclass(frozen=True)
class SessionKey:
    """Everything that shapes a peer's ExaBGP config: a change restarts that peer only."""

    peer: Peer
    local_address: str
    router_id: str


class Reconciler:
    def __init__(
        self,
        view: Callable[[], View],
        synced: Callable[[], bool],
        opts: Options,
        metrics: Metrics,
        run_dir: Path | None = None,
        exabgp: str | None = None,
        exabgp_log_level: str = "warning",
    ) -> None:
        self._view = view
        self._synced = synced
        self.opts = opts
        self.metrics = metrics
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="exalb-"))
        self._exabgp = exabgp
        self._exabgp_log_level = exabgp_log_level
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._speakers: dict[str, tuple[SessionKey, Speaker]] = {}
        self._assignments: dict[str, contract.Assignment] = {}
        # Parsed inputs by object and resourceVersion: with 10,000 Services, re-decoding every
        # ConfigMap entry and EndpointSlice on each pass cost hundreds of milliseconds.
        self._shards: dict[str, tuple[str, contract.Snapshot]] = {}
        self._slices: dict[str, tuple[str, str | None, list[Endpoint]]] = {}
        self._lock = threading.Lock()
        self.last_decision = Decision()
        self.node: Node | None = None
        self._log = log.bind(node=opts.node_name)
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)

    # --- lifecycle -------------------------------------------------------
    def start(self) -> Reconciler:
        self._thread.start()
        return self

    def poke(self) -> None:
        self._dirty.set()

    def speakers(self) -> dict[str, Speaker]:
        with self._lock:
            return {name: s for name, (_, s) in self._speakers.items()}

    def shutdown(self, drain: float = 0.0, timeout: float = 10.0, hold: float = 0.0) -> None:
        """SIGTERM: optionally GRACEFUL_SHUTDOWN + drain, then withdraw all and Cease."""
        if drain > 0:
            self.opts = replace(self.opts, graceful_shutdown=True)
            self._dirty.set()
            deadline = time.monotonic() + min(drain, timeout)
            while time.monotonic() < deadline and not self._all_converged():
                time.sleep(0.01)
            self._log.info("graceful shutdown community sent; draining", seconds=drain)
            time.sleep(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._dirty.set()
        self._thread.join(5)
        with self._lock:
            speakers = [s for _, s in self._speakers.values()]
            self._speakers.clear()
        threads = [threading.Thread(target=s.shutdown, args=(timeout, hold)) for s in speakers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 5)

    def status(self) -> dict[str, Any]:
        """Session state per peer, for the BGPSessionStatus object."""
        peers = []
        for name, sp in sorted(self.speakers().items()):
            st = sp.session
            peers.append(
                {
                    "name": name,
                    "address": sp.peer.address,
                    "state": st.state,
                    "since": datetime.fromtimestamp(st.since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "lastError": st.last_error or "",
                    "prefixes": len(sp.acked()),
                    "updatesSent": st.updates_sent,
                    "exabgpRestarts": st.exabgp_restarts,
                }
            )
        return {
            "node": self.opts.node_name,
            "sessions": len(peers),
            "sessionsUp": sum(1 for p in peers if p["state"] == "up"),
            "servicesAnnounced": len(self.last_decision.announced),
            "peers": peers,
        }

    def _all_converged(self) -> bool:
        return all(s.converged() for s in self.speakers().values())

    # --- loop ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            wake_at = None
            if self._synced():
                try:
                    wake_at = self.reconcile()
                except Exception:
                    self._log.exception("reconcile failed; keeping the previous state")
                    wake_at = time.time() + 1.0
            else:
                wake_at = time.time() + 0.1
            timeout = None if wake_at is None else max(0.0, wake_at - time.time())
            self._dirty.wait(timeout)
            self._dirty.clear()

    def reconcile(self) -> float | None:
        """One full pass; returns when it must run again even without events (announce delay)."""
        decided_at = time.monotonic()
        v = self._view()
        self.metrics.reconciles.inc()
        node = node_from(v.node) if v.node else None
        self.node = node
        peers = [peer_from(o, v.secrets) for o in v.peers]
        self._read_assignments(v.configmaps)
        endpoints = self._endpoints(v.slices)
        now = time.time()
        decision = decide(node, peers, self._assignments.values(), endpoints, self.opts, now)
        self.last_decision = decision
        self.metrics.services_announced.set(len(decision.announced))
        for p in peers:
            self.metrics.peer_problem.labels(p.name).set(1 if p.problem else 0)
            if p.problem:
                self._log.warning("peer unusable", peer=p.name, problem=p.problem)
        self._sync_speakers(node, peers_of_node(peers, node), decision, decided_at)
        self.metrics.reconcile_seconds.observe(time.monotonic() - decided_at)
        return ready_at(node, self.opts)

    def _read_assignments(self, configmaps: list[dict[str, Any]]) -> None:
        entries: dict[str, contract.Assignment] = {}
        errors: dict[str, str] = {}
        fresh: dict[str, tuple[str, contract.Snapshot]] = {}
        try:
            for cm in configmaps:
                md = cm.get("metadata", {})
                name, rv = str(md.get("name")), str(md.get("resourceVersion"))
                cached = self._shards.get(name)
                snap = (
                    cached[1]
                    if cached and cached[0] == rv
                    else contract.read_shards([cm.get("data") or {}])
                )
                fresh[name] = (rv, snap)
                entries.update(snap.entries)
                errors.update(snap.errors)
        except contract.ContractError as exc:
            self.metrics.assignments_stale.set(1)
            self._log.error("assignment ConfigMaps unreadable; keeping last good", error=str(exc))
            return
        self._shards = fresh
        self.metrics.assignments_stale.set(0)
        errors = {k: v for k, v in errors.items() if k not in entries}  # mid-move duplicates
        self.metrics.assignment_errors.set(len(errors))
        for key, reason in errors.items():
            self._log.warning("assignment entry skipped", service=key, reason=reason)
        self._assignments = entries

    def _endpoints(self, slices: list[dict[str, Any]]) -> dict[str, list[Endpoint]]:
        out: dict[str, list[Endpoint]] = {}
        fresh: dict[str, tuple[str, str | None, list[Endpoint]]] = {}
        for s in slices:
            md = s.get("metadata", {})
            key = f"{md.get('namespace')}/{md.get('name')}"
            rv = str(md.get("resourceVersion"))
            cached = self._slices.get(key)
            if cached is not None and cached[0] == rv:
                entry = cached
            else:
                svc, eps = slice_endpoints(s)
                entry = (rv, svc, eps)
            fresh[key] = entry
            if entry[1] is not None:
                out.setdefault(entry[1], []).extend(entry[2])
        self._slices = fresh
        return out

    def _session_key(self, peer: Peer, node: Node | None) -> SessionKey | None:
        local = peer.source_address or self.opts.source_address
        if local is None and node is not None:
            local = next((a for t, a in node.addresses if t == "InternalIP"), None)
        if local is None:
            return None
        rid = peer.router_id or self.opts.router_id
        if rid is None:
            rid = local if ":" not in local else "0.0.0.1"
        return SessionKey(peer, local, rid)

    def _sync_speakers(
        self, node: Node | None, peers: list[Peer], decision: Decision, decided_at: float
    ) -> None:
        wanted = {}
        for p in peers:
            key = self._session_key(p, node)
            if key is None:
                self._log.warning("no source address for peer", peer=p.name)
                continue
            wanted[p.name] = key
        with self._lock:
            for name in [n for n in self._speakers if n not in wanted]:
                _, old = self._speakers.pop(name)
                self._log.info("peer no longer selects this node; closing", peer=name)
                threading.Thread(target=old.shutdown, daemon=True).start()
            for name, key in wanted.items():
                current = self._speakers.get(name)
                if current is not None and current[0] != key:
                    self._log.info("peer changed; restarting its session only", peer=name)
                    threading.Thread(target=current[1].shutdown, daemon=True).start()
                    current = None
                if current is None:
                    sp = self._new_speaker(key)
                    sp.set_desired(decision.routes.get(name, {}), decided_at)
                    self._speakers[name] = (key, sp.start())
                else:
                    current[1].set_desired(decision.routes.get(name, {}), decided_at)

    def _new_speaker(self, key: SessionKey) -> Speaker:
        name = key.peer.name
        m = self.metrics
        labels = (name, self.opts.node_name)
        holder: list[Speaker] = []

        def observe(kind: str, details: dict[str, Any]) -> None:
            sp = holder[0]
            if kind == "ack":
                m.ack_latency.labels(name).observe(details["latency"])
                m.announced.labels(*labels).set(len(sp.acked()))
            elif kind == "update_sent":
                m.updates_sent.labels(*labels).inc()
            elif kind == "state":
                m.session_up.labels(*labels).set(1 if details["state"] == "up" else 0)
                if details["state"] == "down":
                    m.announced.labels(*labels).set(0)
            elif kind == "error":
                m.command_errors.labels(name).inc()
            elif kind == "exabgp_restart":
                m.exabgp_restarts.labels(name).inc()
            elif kind == "seeded":
                m.announced.labels(*labels).set(details["routes"])

        sp = Speaker(
            key.peer,
            key.local_address,
            key.router_id,
            self.run_dir / name,
            node=self.opts.node_name,
            exabgp=self._exabgp,
            log_level=self._exabgp_log_level,
            observer=observe,
        )
        holder.append(sp)
        m.session_up.labels(*labels).set(0)
        return sp
