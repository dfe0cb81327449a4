"""One peer's ExaBGP: its process, kept running, and its API socket.

What ExaBGP holds and what to send it is :class:`announcer.core.ledger.RouteLedger`'s
business; this module runs the process and moves bytes. Three threads:

* the supervisor starts ExaBGP (after any predecessor for the same peer has
  exited: a peer never has two processes, so the router never sees two
  sessions), writes its config seeded with the desired routes, and restarts it
  when it exits: at once, backing off only when it keeps exiting
  (:class:`announcer.core.restart.RestartBackoff`);
* the writer wakes on any change and writes every command the ledger has for it
  in one go, so changes arriving together are coalesced without a timer;
* the reader (the supervisor, while a process runs) drains ExaBGP's output, which
  must always be read or ExaBGP blocks once its pipe is full, and hands answers to
  the ledger and session events to :class:`SessionState`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from announcer.core.config import render
from announcer.core.ledger import RouteLedger
from announcer.core.model import Attrs, Routes
from announcer.core.restart import RestartBackoff
from announcer.core.session import (
    EndOfRib,
    Negotiated,
    Notification,
    SessionEvent,
    SessionRecord,
    StateChange,
    observe,
    restarted,
)
from announcer.core.shutdown import BUDGET, TIMEOUT, WITHDRAWN, Cease, PeerShutdown, ShutdownTimes
from exalb.bgppeer import Peer

from . import launcher, process, protocol

log = structlog.get_logger("speaker")

RETRY_AFTER_ERROR = 1.0
REPORT_WAIT = 20.0  # the launcher imports ExaBGP and checks its fixes before reporting
API_CONNECT_WAIT = 60.0  # a live ExaBGP on a busy node can be slow to start its API process
PREDECESSOR_WAIT = 20.0  # a retiring speaker withdraws (10 s at most), then Ceases
# A peer removed or changed while the announcer runs: every route withdrawn explicitly (no
# budget, nothing is in a hurry), then the Cease.
RETIRE_TIMES = ShutdownTimes(budget=10.0, hold=0.0, timeout=10.0)


@dataclass
class SessionState:
    """What ExaBGP told us about the session, for metrics, logs and the status object."""

    record: SessionRecord = field(default_factory=lambda: SessionRecord(since=time.time()))
    updates_sent: int = 0
    exabgp_restarts: int = 0

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def up(self) -> bool:
        return self.record.up


Observer = Callable[[str, dict[str, Any]], None]  # (event kind, details) -> None


class Speaker:
    """Runs and drives ExaBGP for one peer; ``set_desired`` and ``update`` are thread-safe."""

    def __init__(
        self,
        peer: Peer,
        local_address: str,
        router_id: str,
        workdir: Path,
        node: str,
        exabgp: str | None = None,
        log_level: str = "warning",
        observer: Observer | None = None,
        predecessor: Speaker | None = None,
        spare: bool = False,
        weight_hold: float = 0.0,
    ) -> None:
        self.peer = peer
        self.local_address = local_address
        self.router_id = router_id
        self.workdir = workdir
        self.exabgp = process.exabgp_argv(exabgp)
        # Our launcher (not an explicit --exabgp executable): it can start before its config
        # exists, and it reports which of its fixes hold.
        self._launched = exabgp is None
        self.log_level = log_level
        self.session = SessionState()
        if predecessor is not None:
            self.session.record = restarted(predecessor.session.record, time.time())
        self._observer = observer
        self._predecessor = predecessor
        self._log = log.bind(peer=peer.name, node=node, address=peer.address)
        self._lock = threading.Lock()
        self._ledger = RouteLedger(weight_hold)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stopped = threading.Event()  # our process is reaped and will not be restarted
        self._conn: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # The next launcher, started and waiting for "go" while this ExaBGP runs (``spare``:
        # a restart without interpreter start-up, for the memory of one more launcher).
        self._spare_wanted = spare and self._launched
        self._spare: tuple[subprocess.Popen[bytes], Path] | None = None
        self._launches = 0
        self._retry_at = 0.0
        self._closing: PeerShutdown | None = None  # set by shutdown()
        self._update_sent = threading.Event()  # wakes shutdown() when ExaBGP sends an UPDATE
        # Set once the desired routes are known: only then is a config (and its seed) written.
        self._seeded = threading.Event()
        self._down_seen = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- public ----------------------------------------------------------
    def start(self) -> Speaker:
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.workdir, 0o700)
        for target, name in ((self._supervise, "supervisor"), (self._write_loop, "writer")):
            t = threading.Thread(target=target, name=f"{name}-{self.peer.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def set_desired(self, routes: Routes, decided_at: float | None = None) -> None:
        """Replace the whole desired table (a full recompute); the writer diffs all of it."""
        with self._lock:
            self._seeded.set()  # even when empty: a peer with no routes still gets its session
            changed = self._ledger.set_desired(routes, _now(decided_at))
        if changed:
            self._wake.set()

    def update(self, changes: Mapping[str, Attrs | None], decided_at: float | None = None) -> None:
        """Change some prefixes (None withdraws); the writer then looks at those alone."""
        if not changes:
            return
        with self._lock:
            self._ledger.update(changes, _now(decided_at))
            self._seeded.set()
        self._wake.set()

    def acked(self) -> Routes:
        with self._lock:
            return dict(self._ledger.acked)

    def converged(self) -> bool:
        """ExaBGP has acknowledged exactly the desired routes."""
        with self._lock:
            return self._ledger.converged()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._conn is not None

    def wait_stopped(self, timeout: float) -> bool:
        """Wait until this speaker's ExaBGP has exited for good."""
        return self._stopped.wait(timeout)

    def shutdown(self, times: ShutdownTimes = RETIRE_TIMES) -> None:
        """Withdraw every route; once they are on the wire, or past the budget, Cease.

        :class:`announcer.core.shutdown.PeerShutdown` decides when; see there for why.
        """
        with self._lock:
            announced = self._ledger.acked if self.session.up else {}
            closing = PeerShutdown(announced, time.monotonic(), times, self.peer.graceful_restart)
            self._closing = closing
        self.set_desired({})
        while True:
            self._update_sent.clear()
            now = time.monotonic()
            with self._lock:
                step = closing.decide(now, self.running() and self.session.up)
            if isinstance(step, Cease):
                break
            self._update_sent.wait(step - now)
        self._log_cease(step, time.monotonic() - closing.started)
        if self.running() and self.session.state != "down":
            self._down_seen.clear()
            self._send_lines([f"neighbor {self.peer.address} teardown 2"])
            end = closing.started + times.timeout
            self._down_seen.wait(max(0.1, min(2.0, end - time.monotonic())))
        self.stop()

    def _log_cease(self, cease: Cease, after: float) -> None:
        if cease.why == WITHDRAWN:
            self._log.info("shutdown: every route withdrawn; Cease", seconds=round(after, 3))
        elif cease.why == BUDGET:
            self._log.info(
                "shutdown: withdrawal budget spent; the Cease withdraws the rest",
                unconfirmed=cease.unconfirmed,
                seconds=round(after, 3),
            )
        elif cease.why == TIMEOUT:
            self._log.warning(
                "shutdown: withdrawals not confirmed on the wire; with graceful restart the "
                "router keeps these routes until its restart time",
                unconfirmed=cease.unconfirmed,
            )

    def stop(self) -> None:
        """Stop ExaBGP (its SIGTERM handler closes the session) and our threads."""
        self._stop.set()
        self._wake.set()
        proc = self._proc
        if proc is not None:
            _terminate(proc)
        conn = self._conn
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(5)
        if not self._threads:  # never started
            self._stopped.set()

    # --- supervisor ------------------------------------------------------
    def _supervise(self) -> None:
        try:
            self._await_predecessor()
            self._keep_running()
        finally:
            if self._proc is not None:
                _terminate(self._proc)
            self._stop_spare()
            self._stopped.set()

    def _keep_running(self) -> None:
        backoff = RestartBackoff()
        first = True
        while not self._stop.is_set():
            try:
                self._run_once(first)
            except Exception as exc:
                self._log.error("exabgp run failed", error=repr(exc))
                self._reap()
            first = False
            if self._stop.is_set():
                return
            wait = backoff.after_exit(time.monotonic())
            self.session.exabgp_restarts += 1
            self._event("exabgp_restart", {"backoff": wait})
            self._log.warning("exabgp exited; restarting", retry_in=wait)
            self._stop.wait(wait)

    def _await_predecessor(self) -> None:
        """The same peer's previous speaker may still be withdrawing: let it finish first."""
        old, self._predecessor = self._predecessor, None
        if old is None or old.wait_stopped(PREDECESSOR_WAIT):
            return
        self._log.warning("previous exabgp of this peer still running; stopping it")
        old.stop()

    def _run_once(self, first: bool) -> None:
        sock_path = str(self.workdir / "api.sock")
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(sock_path)
            listener.listen(1)
            listener.settimeout(0.2)
            conn = self._start_exabgp(sock_path, first, listener)
        finally:
            listener.close()
        if conn is not None:
            self._serve(conn)

    def _start_exabgp(
        self, sock_path: str, first: bool, listener: socket.socket
    ) -> socket.socket | None:
        """Start ExaBGP with its seed; its API connection, or None if it did not get that far."""
        conf = self.workdir / "exabgp.conf"
        report = None
        # Our launcher is started ahead and waits for "go": on a cold start its start-up
        # overlaps the announcer's first decision; on a restart the spare started while
        # the previous ExaBGP ran is ready, and only the seed below is left to write.
        if self._launched:
            self._proc, report = self._take_spare() or self._spawn_launcher()
        while not self._seeded.wait(0.1) and not self._stop.is_set():
            pass
        grouped = report is not None and self._grouped_seed_holds(report)
        if self._proc is not None and self._proc.poll() is not None:
            # The launcher refuses to start ExaBGP when a fix did not hold; its log says why.
            self._log.error("exabgp exited at start", code=self._proc.returncode)
            self._reap()
            return None
        if self._stop.is_set():
            if self._proc is not None:
                _terminate(self._proc)
            return None
        with self._lock:
            seed, decided_at = self._ledger.seed()
        bridge = process.bridge_argv(sock_path)
        text = render(self.peer, self.local_address, self.router_id, bridge, seed, grouped)
        _write_private(conf, text)
        self._log.info("starting exabgp", seeded=len(seed), grouped=grouped, restart=not first)
        if self._launched:
            self._go()
        else:
            self._proc = process.spawn(self.exabgp, conf, self.log_level, self._env())
        self._event("exabgp_started", {"pid": self._proc.pid if self._proc else None})
        conn = self._accept(listener)
        if conn is None:
            self._reap()
            return None
        with self._lock:
            self._ledger.attach(seed)
            self._conn = conn
        if seed:
            self._event("seeded", {"routes": len(seed), "decided_at": decided_at})
        self._wake.set()
        return conn

    def _env(self) -> dict[str, str]:
        if self.peer.connect_time:
            return {launcher.CONNECT_RETRY_ENV: str(self.peer.connect_time)}
        return {}

    def _spawn_launcher(self) -> tuple[subprocess.Popen[bytes], Path]:
        """Our launcher, waiting for "go" (nothing read yet); where it reports its fixes.

        Reports alternate between two files, so a spare never overwrites the report of
        the launcher it will replace.
        """
        self._launches += 1
        report = self.workdir / f"fixes-{self._launches % 2}.json"
        report.unlink(missing_ok=True)
        env = {**self._env(), launcher.REPORT_ENV: str(report)}
        proc = process.spawn(
            self.exabgp, self.workdir / "exabgp.conf", self.log_level, env, await_go=True
        )
        return proc, report

    def _start_spare(self) -> None:
        """Start the launcher that will replace this ExaBGP if it dies (supervisor thread).

        Started once the session is up, so its interpreter start-up and imports (seconds
        on a loaded node) neither delay nor compete with this ExaBGP's own start.
        """
        if self._spare_wanted and self._spare is None and not self._stop.is_set():
            self._spare = self._spawn_launcher()

    def _take_spare(self) -> tuple[subprocess.Popen[bytes], Path] | None:
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        if spare[0].poll() is not None:
            self._log.warning("the spare launcher exited", code=spare[0].returncode)
            return None
        return spare

    def _stop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            _terminate(spare[0])

    def _accept(self, listener: socket.socket) -> socket.socket | None:
        """ExaBGP's API process connecting, for as long as ExaBGP runs (bounded)."""
        deadline = time.monotonic() + API_CONNECT_WAIT
        while time.monotonic() < deadline and not self._stop.is_set():
            if self._proc is None or self._proc.poll() is not None:
                self._log.error("exabgp exited before starting its API process")
                return None
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            return conn
        self._log.error("exabgp did not start its API process", waited=API_CONNECT_WAIT)
        return None

    def _grouped_seed_holds(self, report: Path) -> bool:
        """Whether the launcher reported its grouped-seed fix in place; never assumed."""
        deadline = time.monotonic() + REPORT_WAIT
        proc = self._proc
        while time.monotonic() < deadline and not self._stop.is_set():
            if report.exists():
                if grouped_seed_reported(report.read_text()):
                    return True
                break
            if proc is None or proc.poll() is not None:
                break
            time.sleep(0.01)
        self._log.warning("the launcher did not report the grouped-seed fix; one route per line")
        return False

    def _go(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(b"go\n")
            self._proc.stdin.close()
        except OSError as exc:
            self._log.error("exabgp exited before its config was ready", error=str(exc))

    def _serve(self, conn: socket.socket) -> None:
        """Read ExaBGP's output until it goes; then forget what it held."""
        try:
            self._read_loop(conn)
        finally:
            with self._lock:
                self._conn = None
                self._ledger.detach()
            self._set_state("down", "exabgp exited")
            try:
                conn.close()
            except OSError:
                pass
            self._reap()

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        _terminate(proc)
        self._event("exabgp_exited", {"pid": proc.pid})
        self._log.info("exabgp stopped", code=proc.returncode)

    # --- writer ----------------------------------------------------------
    def _write_loop(self) -> None:
        due: float | None = None  # a held weight change (RouteLedger.due)
        while not self._stop.is_set():
            wake = [t for t in (self._retry_at or None, due) if t is not None]
            timeout = max(0.0, min(wake) - time.monotonic()) if wake else None
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._retry_at = 0.0
            with self._lock:
                if self._conn is None:
                    due = None  # a new ExaBGP starts from every desired route
                    continue
                cmds = self._ledger.take_commands(time.monotonic())
                due = self._ledger.due()
            if cmds:
                self._send_lines([c.line for c in cmds])

    def _send_lines(self, lines: list[str]) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.sendall(("\n".join(lines) + "\n").encode())
        except OSError as exc:
            self._log.warning("write to exabgp failed", error=str(exc))

    # --- reader ----------------------------------------------------------
    def _read_loop(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(262144)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                event = protocol.parse(raw.strip())
                if event is not None:
                    self._on_event(event)

    def _on_event(self, event: protocol.Event) -> None:
        if isinstance(event, protocol.Answer):
            self._answer(event.ok)
        elif isinstance(event, StateChange):
            self._set_state(event.state, event.reason)
            if event.state == "up":
                self._start_spare()
        elif isinstance(event, protocol.UpdateSent):
            self.session.updates_sent += 1
            self._event("update_sent", {})
            closing = self._closing
            if event.withdrawn and closing is not None:
                with self._lock:
                    closing.sent(event.withdrawn, time.monotonic())
                self._update_sent.set()
        elif isinstance(event, EndOfRib):
            if event.direction == "sent":  # an End-of-RIB is an UPDATE on the wire
                self.session.updates_sent += 1
                self._event("update_sent", {})
            self._record(event)
        elif isinstance(event, Notification):
            self._record(event)
            rec = self.session.record
            seen = rec.received if event.direction == "received" else rec.sent
            assert seen is not None
            self._log.warning("bgp notification", direction=event.direction, what=seen.describe())
        elif isinstance(event, Negotiated):
            self._record(event)
        else:
            self._log.warning("unparseable line from exabgp", line=event.line)

    def _record(self, event: SessionEvent) -> None:
        """Fold ``event`` into the session record, then tell the observer about it."""
        self.session.record = observe(self.session.record, event, time.time())
        self._event("session", {"record": self.session.record, "event": event})

    def _answer(self, ok: bool) -> None:
        with self._lock:
            item = self._ledger.answer(ok)
            acked = len(self._ledger.acked)
        if item is None:
            return
        if ok:
            latency = time.monotonic() - item.decided_at
            details = {"latency": latency, "changes": len(item.command.changes), "acked": acked}
            self._event("ack", details)
            return
        self._retry_at = time.monotonic() + RETRY_AFTER_ERROR
        self._log.error("exabgp rejected a command", command=item.command.line[:200])
        self._event("error", {})
        self._wake.set()

    def _set_state(self, state: str, reason: str | None) -> None:
        old = self.session.state
        if state == old and reason is None:
            return
        self._record(StateChange(state, reason))
        if state == "down":
            self._down_seen.set()
        if state != old:
            self._log.info("session state", state=state, reason=reason)
        self._event("state", {"state": state, "reason": reason})

    def _event(self, kind: str, details: dict[str, Any]) -> None:
        if self._observer is not None:
            try:
                self._observer(kind, details)
            except Exception as exc:
                self._log.warning("observer failed", error=repr(exc))


def _now(decided_at: float | None) -> float:
    return decided_at if decided_at is not None else time.monotonic()


def _write_private(path: Path, text: str) -> None:
    """Write ExaBGP's config (it holds the MD5 password) readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (ExaBGP closes its sessions on it), SIGKILL after 5 s; always reaped."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def grouped_seed_reported(report: str) -> bool:
    """Whether the launcher's report names the grouped-seed fix; a malformed report names none."""
    try:
        applied = json.loads(report)
    except ValueError:
        return False
    return isinstance(applied, list) and launcher.STATIC_ATTRIBUTES in applied
