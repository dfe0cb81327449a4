"""The level-triggered loop: what changed -> re-decide from current state -> hand peers routes.

One thread decides. Informer callbacks only record *which* object changed
(the informers' workqueue keys), so a burst of events (a rollout touching 50
EndpointSlices) costs one pass, with no timer: the first event of a burst is
acted on at once, the rest are folded into the next pass. A pass reads the
current state of just those objects from the mirrors and re-decides just the
Services they belong to (``core.desired``); anything shared by all Services
(the node, peers, flags) re-decides everything, and so does a periodic full
pass, so a missed event could only ever delay convergence, never prevent it.
Each peer's :class:`Speaker` then sends only the difference to what its ExaBGP
acknowledged.

Two of the inputs are checked, not believed (``core.published``, ``core.pools``):
a deleted or unreadable assignments shard keeps its last good entries, and a
prefix its VIPPool does not justify is never announced; ``reports`` says so.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

import exalb.assignments as contract
from announcer.announcements import Announcements
from announcer.bfd.speaker import BfdPeer, BfdSpeaker
from announcer.core import source
from announcer.core.datapath import CheckState, DataPathChecks, Probe, probe_target
from announcer.core.decide import Context, context, unusable_peers, wake_at
from announcer.core.desired import DesiredState, Touched
from announcer.core.drain import DrainClock
from announcer.core.model import Endpoint, Node, Options
from announcer.core.newaddresses import NewAddresses
from announcer.core.pools import PoolSpace, PoolSpaces
from announcer.core.published import Published
from announcer.core.report import decision_report
from announcer.core.sessionstatus import session_fields
from announcer.core.shutdown import ShutdownTimes
from announcer.exabgp.speaker import Speaker
from announcer.kube.convert import node_from, peer_from
from announcer.kube.sources import View
from announcer.metrics import Metrics
from announcer.reports import ContractReports, EventSink
from exalb.assignments import DataPathTarget
from exalb.bgppeer import Peer

Obj = dict[str, Any]
FULL_RESYNC = 300.0  # seconds between full passes, the safety net under the per-key ones

log = structlog.get_logger("reconciler")


@dataclass(frozen=True)
class SessionKey:
    """Everything that shapes a peer's ExaBGP config: a change restarts that peer only."""

    peer: Peer  # Peer.session(): without the node selectors
    local_address: str
    router_id: str


class Inputs(Protocol):
    """The informer mirrors, as the reconciler reads them (``kube.sources.Sources``)."""

    def synced(self) -> bool: ...
    def has_synced(self, kind: str) -> bool: ...
    def view(self) -> View: ...
    def shard(self, key: str) -> Obj | None: ...
    def shards(self) -> dict[str, Obj]: ...
    def slice(self, key: str) -> Obj | None: ...
    def all_slices(self) -> dict[str, Obj]: ...


class Reconciler:
    def __init__(
        self,
        inputs: Inputs,
        opts: Options,
        metrics: Metrics,
        run_dir: Path | None = None,
        exabgp: str | None = None,
        exabgp_log_level: str = "warning",
        exabgp_spare: bool = False,
        events: EventSink | None = None,
        bfd: BfdSpeaker | None = None,
        service_event_interval: float = 30.0,
        data_path_max_age: float = 35.0,
    ) -> None:
        self._inputs = inputs
        self._bfd = bfd
        self.opts = opts
        self.metrics = metrics
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="exalb-"))
        self._exabgp = exabgp
        self._exabgp_log_level = exabgp_log_level
        self._exabgp_spare = exabgp_spare
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._speakers: dict[str, tuple[SessionKey, Speaker]] = {}
        # Speakers shutting down, by peer: a new speaker for that peer waits for its exit.
        self._retiring: dict[str, Speaker] = {}
        self._published = Published()
        self._pools = PoolSpaces()
        self._state = DesiredState()
        self._drain = DrainClock()
        # EndpointSlice key -> (its Service "namespace/name", endpoints), and the reverse
        self._slices: dict[str, tuple[str, tuple[Endpoint, ...]]] = {}
        self._slices_of: dict[str, set[str]] = {}
        # What changed since the last pass (informer callbacks write, the loop takes).
        self._dirty_lock = threading.Lock()
        self._dirty_shards: set[str] = set()
        self._dirty_slices: set[str] = set()
        self._prefetched = False
        self._unusable: dict[str, str] = {}  # peer selecting this node -> why no session
        self._peer_generations: dict[str, int] = {}  # BGPPeer -> the generation last acted on
        # Called on every session event (state, NOTIFICATION, negotiation): the status
        # writer's wake-up, so the BGPSessionStatus shows it at once.
        self.on_session_event: Callable[[], None] = lambda: None
        self._full_wanted = False  # BFD changed: which sessions may run is re-decided
        self._last_full = 0.0
        self._lock = threading.Lock()
        self._log = log.bind(node=opts.node_name)
        self._reports = ContractReports(metrics, events, self._log)
        self._announcements = Announcements(
            opts.node_name, events, service_event_interval, time.time(), self._log
        )
        self._bfd_down: set[str] = set()  # peers whose BGP session BFD holds down
        # Data path checks (issue 13): the prober reports results, this thread decides.
        self._checks = DataPathChecks(data_path_max_age)
        self._new = NewAddresses(opts.hold_new_addresses)
        # What the report shows of these two; replaced whole after each pass (the status
        # writer's thread reads them while this one changes the originals).
        self._held: dict[str, tuple[frozenset[str], float]] = {}
        self._checked: dict[str, CheckState] = {}
        self._probes: list[tuple[str, Probe]] = []  # reported since the last pass
        self._targets: dict[str, DataPathTarget] = {}  # assignment key -> where to connect
        self._targets_lock = threading.Lock()
        self.on_targets_changed: Callable[[], None] = lambda: None  # the prober's wake-up
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)

    # --- lifecycle -------------------------------------------------------
    def start(self) -> Reconciler:
        self._thread.start()
        return self

    def changed(self, kind: str, key: str) -> None:
        """An informer callback: note which object changed and wake the loop.

        Node, BGPPeer and Secret changes only wake it: every pass re-reads those. A BFD
        change asks for a full pass, which starts or stops that peer's session.
        """
        with self._dirty_lock:
            if kind == "bfd":
                self._full_wanted = True
            elif kind == "assignments":
                self._dirty_shards.add(key)
            elif kind == "endpointslices":
                self._dirty_slices.add(key)
        self._dirty.set()

    def checked(self, key: str, probe: Probe) -> None:
        """The prober's report: one data path connect ended (called from its thread)."""
        with self._dirty_lock:
            self._probes.append((key, probe))
        self._dirty.set()

    def probe_targets(self) -> dict[str, DataPathTarget]:
        """What the prober connects to: Services whose check applies on this node."""
        with self._targets_lock:
            return dict(self._targets)

    def speakers(self) -> dict[str, Speaker]:
        with self._lock:
            return {name: s for name, (_, s) in self._speakers.items()}

    def shutdown(self, times: ShutdownTimes, drain: float = 0.0) -> None:
        """SIGTERM: optionally GRACEFUL_SHUTDOWN + drain, then withdraw all and Cease."""
        if drain > 0:
            self.opts = replace(self.opts, graceful_shutdown=True)
            self._dirty.set()
            deadline = time.monotonic() + min(drain, times.timeout)
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
        # Daemon threads: a speaker stuck past its timeout must not keep the process alive
        # until the kubelet's SIGKILL (the interpreter waits for every non-daemon thread).
        threads = [
            threading.Thread(
                target=s.shutdown, args=(times,), name=f"shutdown-{s.peer.name}", daemon=True
            )
            for s in speakers
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + times.timeout + 5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for t in threads:
            if t.is_alive():
                self._log.error(
                    "a session's shutdown did not end in time; exiting anyway", thread=t.name
                )

    def status(self) -> dict[str, Any]:
        """Session state per peer, for the BGPSessionStatus object."""
        peers = []
        for name, sp in sorted(self.speakers().items()):
            st = sp.session
            entry: dict[str, Any] = {"name": name, "address": sp.peer.address}
            generation = self._peer_generations.get(name)
            if generation is not None:
                entry["observedGeneration"] = generation
            entry.update(session_fields(st.record))
            entry.update(
                prefixes=len(sp.acked()),
                updatesSent=st.updates_sent,
                exabgpRestarts=st.exabgp_restarts,
            )
            peers.append(entry)
        return {
            "node": self.opts.node_name,
            "sessions": len(peers),
            "sessionsUp": sum(1 for p in peers if p["state"] == "up"),
            "servicesAnnounced": len(self._state.announced),
            "peers": peers,
            "unusablePeers": [
                {"name": name, "reason": why} for name, why in self._unusable.items()
            ],
            **self._decision_report(),
        }

    def _decision_report(self) -> dict[str, Any]:
        """What ``exalbctl explain`` compares its own decision with (``core.report``)."""
        ctx = self._state.ctx
        if ctx is None:
            return {}
        since = self._announcements.events_since()
        report = decision_report(
            ctx,
            self.opts,
            self._bfd_down,
            since,
            self._drain.started,
            self._checked,
            self._held,
        )
        return {"decision": report}

    def announcing(self) -> str | None:
        """None once a pass has run and every session is up with its routes acknowledged;
        otherwise what is still missing."""
        if not self._last_full:
            return "no reconcile pass yet"
        pending = sorted(
            name
            for name, sp in self.speakers().items()
            if sp.session.state != "up" or not sp.converged()
        )
        return f"session down or routes not sent: {', '.join(pending)}" if pending else None

    def _all_converged(self) -> bool:
        return all(s.converged() for s in self.speakers().values())

    # --- loop ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            wake_at = None
            if self._inputs.synced():
                try:
                    wake_at = self.reconcile()
                except Exception:
                    self._log.exception("reconcile failed; keeping the previous state")
                    wake_at = time.time() + 1.0
            else:
                self._prefetch()
                wake_at = time.time() + 0.01  # cold start: act the moment the last list lands
            timeout = None if wake_at is None else max(0.0, wake_at - time.time())
            self._dirty.wait(timeout)
            self._dirty.clear()

    def _prefetch(self) -> None:
        """Cold start: decode the assignments while the EndpointSlices are still listing.

        The process mostly waits on the API server during that list, so decoding the
        entries costs no wall time here; the first full pass then finds every
        entry unchanged (one string comparison each) and goes straight to deciding.
        """
        if self._prefetched or not self._inputs.has_synced("assignments"):
            return
        self._prefetched = True
        shards = self._inputs.shards()
        self._read_shards(shards.keys(), shards)

    def reconcile(self) -> float | None:
        """One pass; returns when it must run again even without events.

        That is when the announce delay ends, or when an announce/withdraw Event held back
        by its rate limit is due.
        """
        decided_at = time.monotonic()
        with self._dirty_lock:
            shards, self._dirty_shards = self._dirty_shards, set()
            slices, self._dirty_slices = self._dirty_slices, set()
            full_wanted, self._full_wanted = self._full_wanted, False
            probes, self._probes = self._probes, []
        checked = {
            key for key, probe in probes if key in self._targets and self._checks.record(key, probe)
        }
        node, peers, pools = self._read_inputs()
        now = time.time()
        checked |= self._checks.expire(now)
        drain_started = self._observe_drain(node, now)
        ctx = context(node, peers, self.opts, now, pools, drain_started)
        # The first pass finds no context yet, so it is always full.
        full = full_wanted or ctx != self._state.ctx or decided_at - self._last_full > FULL_RESYNC
        kind = "full" if full else "changed"
        self.metrics.reconciles.labels(kind).inc()
        changed: set[str] | None = None  # the Services re-decided; None: all of them
        if full:
            self._ensure_speakers(node, ctx)
            self._rebuild(ctx, now)
            self._refresh_targets(None)
            self._hand_routes(None, decided_at)
        else:
            changed = self._pass_changed(shards, slices, checked, now, decided_at)
        self._reports.refused(self._state.refused, self._published.get)
        self.metrics.services_announced.set(len(self._state.announced))
        self.metrics.reconcile_seconds.labels(kind).observe(time.monotonic() - decided_at)
        tell_at = self._announcements.passed(self._state, changed, self._published.get, time.time())
        self._keep_for_reports(now)
        times = (
            wake_at(node, self.opts, now, drain_started),
            tell_at,
            self._checks.next_expiry(),
            self._new.next_release(now),
        )
        return min((t for t in times if t is not None), default=None)

    def _read_inputs(self) -> tuple[Node | None, list[Peer], dict[str, PoolSpace]]:
        """This node, the peers and the pools' spaces from the caches, with the unusable
        peers and invalid pools reported on the way."""
        v = self._inputs.view()
        node = node_from(v.node) if v.node else None
        peers = [peer_from(o, v.secrets, v.secrets_namespace) for o in v.peers]
        self._peer_generations = {
            str(o["metadata"]["name"]): int(o["metadata"].get("generation") or 0) for o in v.peers
        }
        # Only peers selecting this node: a peer no node of ours runs is no problem here.
        self._unusable = unusable_peers(peers, node)
        self._reports.peers(self._unusable, [p.name for p in peers])
        pools, invalid = self._pools.update({name: o.get("spec") for name, o in v.pools.items()})
        self._reports.invalid_pools(invalid)
        return node, peers, pools

    def _pass_changed(
        self,
        shards: set[str],
        slices: set[str],
        checked: set[str],
        now: float,
        decided_at: float,
    ) -> set[str]:
        """Re-decide only the Services whose inputs changed; the keys re-decided."""
        entries = self._read_shards(shards)
        if entries:
            self._report_errors()
        for key in entries:
            a = self._published.get(key)
            self._new.saw(key, None if a is None else a.ips, now)
        released = self._new.released(now)
        changed = entries | self._read_slices(slices) | checked | released
        self._refresh_targets(entries)
        touched: Touched = {}
        for key in changed:
            for peer, prefixes in self._update(key, now).items():
                touched.setdefault(peer, set()).update(prefixes)
        self._hand_routes(touched, decided_at)
        return changed

    def _keep_for_reports(self, now: float) -> None:
        """What ``status`` and ``exalbctl explain`` read between passes: checks, holds."""
        self.metrics.data_path_not_passing.set(
            sum(1 for k in self._targets if k not in self._checks.states)
            + sum(1 for s in self._checks.states.values() if not s.passing)
        )
        held = self._new.held_all(now)
        self._held = {k: (ips, self._new.until(k) or now) for k, ips in held.items()}
        self._checked = dict(self._checks.states)

    def _refresh_targets(self, keys: Iterable[str] | None) -> None:
        """Re-read the data path targets of ``keys`` (None: of every Service)."""
        ctx = self._state.ctx
        if ctx is None:
            return
        new = {} if keys is None else dict(self._targets)
        for key in self._published.entries() if keys is None else keys:
            a = self._published.get(key)
            target = None if a is None else probe_target(a, ctx.labels)
            if target is not None:
                new[key] = target
            else:
                new.pop(key, None)
        if new == self._targets:
            return
        with self._targets_lock:
            self._targets = new
        self._checks.retain(new)
        self.on_targets_changed()

    def _observe_drain(self, node: Node | None, now: float) -> float | None:
        drain = self.opts.drain
        drained = node is not None and drain is not None and drain.applies(node)
        before = self._drain.started
        started = self._drain.observe(drained, now)
        if started is not None and before is None and drain is not None:
            self._log.info(
                "node cordoned or tainted: announcing with GRACEFUL_SHUTDOWN, then withdrawing",
                seconds=drain.seconds,
            )
        elif started is None and before is not None:
            self._log.info("node no longer drained: announcing as before")
        return started

    def _rebuild(self, ctx: Context, now: float) -> None:
        """Everything from the mirrors: first pass, context change, periodic safety net."""
        self._last_full = time.monotonic()
        shards = self._inputs.shards()
        for name in [n for n in self._published if n not in shards]:
            self._published.replace(name, None)
        self._read_shards(shards.keys(), shards)
        self._reports.nothing_published(not shards and not any(True for _ in self._published))
        self._slices.clear()
        self._slices_of.clear()
        for key, obj in self._inputs.all_slices().items():
            self._index_slice(key, obj)
        endpoints = {svc: self._endpoints_of(svc) for svc in self._slices_of}
        published = self._published.entries()
        ips = {key: a.ips for key, a in published.items()}
        if self._state.ctx is None:
            self._new.start(ips)  # what the first read finds, kube-proxy has had for long
        else:
            self._new.saw_all(ips, now)
        self._new.released(now)
        held = self._new.held_all(now)
        self._state.rebuild(ctx, published.values(), endpoints, self._checks.states, held)
        self._report_errors()
        self._log.info(
            "full pass",
            services=len(self._state),
            announced=len(self._state.announced),
            endpointslices=len(self._slices),
            peers=len(ctx.peers),
            took_ms=round((time.monotonic() - self._last_full) * 1000, 1),
        )

    def _update(self, key: str, now: float) -> Touched:
        """Re-decide one Service (assignment key ``namespace.name``) from its current inputs."""
        a = self._published.get(key)
        svc = f"{a.namespace}/{a.name}" if a else key.replace(".", "/", 1)
        check = self._checks.states.get(key)
        held = self._new.held(key, now)
        return self._state.update(key, a, self._endpoints_of(svc), check, held)

    def _read_shards(self, names: Iterable[str], objs: Mapping[str, Obj] | None = None) -> set[str]:
        """Re-read the named assignment shards; the assignment keys whose entry changed."""
        changed: set[str] = set()
        for name in names:
            cm = objs.get(name) if objs is not None else self._inputs.shard(name)
            data = None if cm is None else cm.get("data") or {}
            changed |= self._published.replace(name, data)
        self._reports.stale(self._published.stale())
        return changed

    def _report_errors(self) -> None:
        errors = self._published.errors()
        self.metrics.malformed_entries.set(len(errors))
        for key, reason in errors.items():
            self._log.warning("assignment entry skipped", service=key, reason=reason)

    def _read_slices(self, keys: Iterable[str]) -> set[str]:
        """Re-index the named EndpointSlices; the assignment keys of the Services they touch."""
        services: set[str] = set()
        for key in keys:
            old = self._slices.pop(key, None)
            if old is not None:
                siblings = self._slices_of.get(old[0], set())
                siblings.discard(key)
                if not siblings:
                    self._slices_of.pop(old[0], None)
                services.add(old[0])
            obj = self._inputs.slice(key)
            if obj is not None:
                new = self._index_slice(key, obj)
                if new is not None:
                    services.add(new)
        return {contract.entry_key(*svc.split("/", 1)) for svc in services}

    def _index_slice(self, key: str, obj: Obj) -> str | None:
        svc = obj.get("service")
        if not svc:
            return None
        self._slices[key] = (svc, obj.get("endpoints") or ())
        self._slices_of.setdefault(svc, set()).add(key)
        return str(svc)

    def _endpoints_of(self, svc: str) -> list[Endpoint]:
        out: list[Endpoint] = []
        for key in sorted(self._slices_of.get(svc, ())):
            out.extend(self._slices[key][1])
        return out

    def _session_key(self, peer: Peer, node: Node | None) -> SessionKey | None:
        local = source.source_address(peer, node, self.opts)
        if local is None:
            return None
        return SessionKey(peer.session(), local, source.router_id(peer, node, self.opts, local))

    def _ensure_speakers(self, node: Node | None, ctx: Context) -> None:
        """Start, restart or stop peers' speakers to match the peers selecting this node.

        Runs before a full pass decides: a new speaker starts its ExaBGP at once and
        writes its config (seeded with every route) when it is handed its routes.
        """
        wanted = {}
        for p in ctx.peers:
            key = self._session_key(p, node)
            if key is None:
                self._log.warning("no source address of the peer's family; no session", peer=p.name)
                continue
            wanted[p.name] = key
        wanted = self._without_bfd_down(ctx.peers, wanted)
        # Peers selecting this node keep their series while their session is down.
        selecting = {p.name for p in ctx.peers} | self._unusable.keys()
        with self._lock:
            for name in [n for n in self._speakers if n not in wanted]:
                _, old = self._speakers.pop(name)
                if name in selecting:
                    self._log.info(
                        "closing the session; the peer still selects this node", peer=name
                    )
                else:
                    self._log.info("peer no longer selects this node; closing", peer=name)
                self._retire(name, old, forget=name not in selecting)
            for name, key in wanted.items():
                current = self._speakers.get(name)
                if current is not None and current[0] != key:
                    self._log.info("peer changed; restarting its session only", peer=name)
                    self._retire(name, current[1])
                    current = None
                if current is None:
                    self._speakers[name] = (key, self._new_speaker(key).start())

    def _without_bfd_down(
        self, peers: Iterable[Peer], wanted: dict[str, SessionKey]
    ) -> dict[str, SessionKey]:
        """Configure BFD for the wanted peers; drop those whose BFD went down.

        Dropping a peer's speaker closes its BGP session at once, so the router withdraws
        this node's routes within BFD's detection time instead of its hold time; the full
        pass after BFD is up again starts the session with every route.
        """
        if self._bfd is None:
            return wanted
        self._bfd.configure(
            BfdPeer(p.name, p.address, wanted[p.name].local_address, p.bfd)
            for p in peers
            if p.bfd is not None and p.name in wanted
        )
        held = {n for n in wanted if self._bfd.holds_down(n)}
        self._bfd_down = held
        for name in held:
            self._log.warning("BFD is down; holding the BGP session down", peer=name)
        return {n: k for n, k in wanted.items() if n not in held}

    def _retire(self, name: str, speaker: Speaker, forget: bool = False) -> None:
        """Shut ``speaker`` down in the background; the peer's next speaker waits for it.

        ``forget``: the peer no longer selects this node, and its metric series go once
        the speaker has stopped (it reports its session down on the way).
        """
        for peer in [p for p, s in self._retiring.items() if s.wait_stopped(0)]:
            del self._retiring[peer]
        self._retiring[name] = speaker
        threading.Thread(target=self._shut_down, args=(name, speaker, forget), daemon=True).start()

    def _shut_down(self, name: str, speaker: Speaker, forget: bool) -> None:
        speaker.shutdown()
        with self._lock:
            if forget and name not in self._speakers:  # not selecting this node again since
                self.metrics.forget_peer(name)

    def _hand_routes(self, touched: Touched | None, decided_at: float) -> None:
        """Each speaker gets its peer's routes: all of them, or the ``touched`` prefixes."""
        routes = self._state.routes
        for name, sp in self.speakers().items():
            mine = routes.get(name, {})
            if touched is None:
                sp.set_desired(mine, decided_at)
            elif name in touched:
                sp.update({p: mine.get(p) for p in touched[name]}, decided_at)

    def _new_speaker(self, key: SessionKey) -> Speaker:
        name = key.peer.name
        m = self.metrics

        def observe(kind: str, details: dict[str, Any]) -> None:
            if kind == "ack":
                m.ack_latency.labels(name).observe(details["latency"])
                m.announced.labels(name).set(details["acked"])
            elif kind == "update_sent":
                m.updates_sent.labels(name).inc()
            elif kind == "state":
                m.session_up.labels(name).set(1 if details["state"] == "up" else 0)
                if details["state"] == "down":
                    m.announced.labels(name).set(0)
            elif kind == "error":
                m.command_errors.labels(name).inc()
            elif kind == "exabgp_restart":
                m.exabgp_restarts.labels(name).inc()
            elif kind == "seeded":
                m.announced.labels(name).set(details["routes"])
            elif kind == "session":
                m.record_session(name, details["record"], details["event"])
                self.on_session_event()

        sp = Speaker(
            key.peer,
            key.local_address,
            key.router_id,
            self.run_dir / name,
            node=self.opts.node_name,
            exabgp=self._exabgp,
            log_level=self._exabgp_log_level,
            spare=self._exabgp_spare,
            observer=observe,
            predecessor=self._retiring.pop(name, None),
            weight_hold=self.opts.weight_hold,
        )
        m.session_up.labels(name).set(0)
        return sp
