"""One peer's ExaBGP: its process, its API channel, and what it has acknowledged.

The speaker keeps three route maps for its peer:

* ``desired``: what the decision wants, replaced wholesale on each recompute;
* ``sent``: what ExaBGP will hold once every command written so far is done;
* ``acked``: what ExaBGP has confirmed with ``done``.

One writer thread owns the socket's write side. It wakes on any change and
writes the whole difference between ``desired`` and ``sent`` in one go, so
changes arriving together are coalesced without a timer. One reader thread
drains ExaBGP's output (acks must always be read or ExaBGP blocks at
~64 KiB), matches ``done``/``error`` to commands in order, and folds JSON
neighbor events into the session state. ExaBGP answers a command it cannot
parse before earlier queued ones, so an ``error`` may be matched to the
wrong command; that is harmless because every command is idempotent and an
error makes its prefixes be re-sent.

If ExaBGP exits, the supervisor restarts it with capped backoff and seeds the
new process with the full desired state in its config (the fast path), so
the replay is a single UPDATE burst at session establishment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from announcer.core.config import render
from announcer.core.diff import Command, commands
from announcer.core.model import Attrs, Peer, Routes

from . import launcher, process

log = structlog.get_logger("speaker")

RETRY_AFTER_ERROR = 1.0
MAX_BACKOFF = 30.0
STABLE_RUN = 60.0  # a process that lived this long resets the backoff


@dataclass
class SessionState:
    """What ExaBGP told us about the session, for metrics, logs and the status object."""

    state: str = "down"  # down | connected | up
    since: float = field(default_factory=time.time)
    last_error: str | None = None
    last_notification: str | None = None
    updates_sent: int = 0
    exabgp_restarts: int = 0

    @property
    def up(self) -> bool:
        return self.state == "up"


@dataclass
class _Inflight:
    cmd: Command
    decided_at: float


Observer = Callable[[str, dict[str, Any]], None]  # (event kind, details) -> None


class Speaker:
    """Runs and drives ExaBGP for one peer; thread-safe ``set_desired``."""

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
    ) -> None:
        self.peer = peer
        self.local_address = local_address
        self.router_id = router_id
        self.workdir = workdir
        self.exabgp = process.exabgp_argv(exabgp)
        # Our launcher (not an explicit --exabgp executable): it can start before its config
        # exists, and, with its fixes in, it announces a seed of grouped static lines.
        self._launched = exabgp is None
        self._grouped_seed = self._launched and launcher.fixes_available()
        self.log_level = log_level
        self.session = SessionState()
        self._observer = observer
        self._log = log.bind(peer=peer.name, node=node, address=peer.address)
        self._lock = threading.Condition()
        self._desired: Routes = {}
        self._decided_at = time.monotonic()
        self._sent: Routes = {}
        self._acked: Routes = {}
        self._inflight: deque[_Inflight] = deque()
        # Prefixes changed since the writer last ran; None: compare the whole tables.
        self._pending: set[str] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._conn: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._retry_at = 0.0
        self._wire_pending: set[str] = set()
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
            if routes == self._desired:
                return
            self._desired = dict(routes)
            self._pending = None
            self._decided_at = decided_at if decided_at is not None else time.monotonic()
        self._wake.set()

    def update(self, changes: Mapping[str, Attrs | None], decided_at: float | None = None) -> None:
        """Change some prefixes (None withdraws); the writer then looks at those alone.

        At 10,000 routes, diffing the whole table for one changed Service was a
        few milliseconds of the readiness-to-router latency; this makes it O(change).
        """
        if not changes:
            return
        with self._lock:
            for prefix, attrs in changes.items():
                if attrs is None:
                    self._desired.pop(prefix, None)
                else:
                    self._desired[prefix] = attrs
            if self._pending is not None:
                self._pending.update(changes)
            self._seeded.set()
            self._decided_at = decided_at if decided_at is not None else time.monotonic()
        self._wake.set()

    def acked(self) -> Routes:
        with self._lock:
            return dict(self._acked)

    def converged(self) -> bool:
        """ExaBGP has acknowledged exactly the desired routes."""
        with self._lock:
            return not self._inflight and self._acked == self._desired

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._conn is not None

    def wait_converged(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.converged() and self.running():
                return True
            time.sleep(0.01)
        return False

    def shutdown(self, timeout: float = 10.0, hold: float = 0.0) -> None:
        """Withdraw every route, wait until the withdrawals are on the wire, then Cease.

        ``hold`` keeps the session up that much longer once the withdrawals are
        sent, so the router has processed (and passed on) the withdrawals before
        the session goes down and no other path depends on its session handling.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._wire_pending = set(self._acked) if self.session.up else set()
        self.set_desired({})
        self._wake.set()
        while time.monotonic() < deadline:
            with self._lock:
                done = not self._inflight and not self._acked and not self._wire_pending
            if done or not self.running():
                break
            time.sleep(0.005)
        with self._lock:
            left = len(self._wire_pending)
        if left:
            self._log.warning("shutdown: withdrawals not confirmed on the wire", pending=left)
        elif hold > 0 and self.running() and self.session.up:
            time.sleep(min(hold, max(0.0, deadline - time.monotonic())))
        if self.running() and self.session.state != "down":
            self._down_seen.clear()
            self._send_lines([f"neighbor {self.peer.address} teardown 2"])
            self._down_seen.wait(max(0.1, min(2.0, deadline - time.monotonic())))
        self.stop()

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

    # --- supervisor ------------------------------------------------------
    def _supervise(self) -> None:
        backoff = 0.5
        first = True
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._run_once(first)
            except Exception as exc:
                self._log.error("exabgp run failed", error=repr(exc))
            first = False
            if self._stop.is_set():
                return
            if time.monotonic() - started > STABLE_RUN:
                backoff = 0.5
            self.session.exabgp_restarts += 1
            self._event("exabgp_restart", {"backoff": backoff})
            self._log.warning("exabgp exited; restarting", retry_in=backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _run_once(self, first: bool) -> None:
        sock_path = str(self.workdir / "api.sock")
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock_path)
        listener.listen(1)
        listener.settimeout(15)
        env = {}
        if self.peer.connect_time:
            env[launcher.CONNECT_RETRY_ENV] = str(self.peer.connect_time)
        # Our launcher starts at once and waits for "go": its start-up overlaps the
        # announcer's first decision, and the seed below is that decision.
        conf = self.workdir / "exabgp.conf"
        if self._launched:
            self._proc = process.spawn(self.exabgp, conf, self.log_level, env, await_go=True)
        while not self._seeded.wait(0.1) and not self._stop.is_set():
            pass
        if self._stop.is_set():
            if self._proc is not None:
                _terminate(self._proc)
            listener.close()
            return
        with self._lock:
            seed = dict(self._desired)
            decided_at = self._decided_at
        text = render(
            self.peer,
            self.local_address,
            self.router_id,
            process.bridge_argv(sock_path),
            seed,
            grouped=self._grouped_seed,
        )
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self._log.info("starting exabgp", seeded=len(seed), restart=not first)
        if self._launched:
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(b"go\n")
                self._proc.stdin.close()
            except OSError as exc:
                self._log.error("exabgp exited before its config was ready", error=str(exc))
        else:
            self._proc = process.spawn(self.exabgp, conf, self.log_level, env)
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            self._log.error("exabgp did not start its API process")
            _terminate(self._proc)
            return
        finally:
            listener.close()
        with self._lock:
            self._acked = dict(seed)
            self._sent = dict(seed)
            self._pending = None  # desired may have moved on since the seed was taken
            self._inflight.clear()
            self._conn = conn
        if seed:
            self._event("seeded", {"routes": len(seed), "decided_at": decided_at})
        self._wake.set()
        try:
            self._read_loop(conn)
        finally:
            with self._lock:
                self._conn = None
                self._acked = {}
                self._sent = {}
                self._pending = None
                self._inflight.clear()
                self._wire_pending.clear()
            self._set_state("down", "exabgp exited")
            try:
                conn.close()
            except OSError:
                pass
            proc = self._proc
            _terminate(proc)
            self._log.info("exabgp stopped", code=proc.returncode)

    # --- writer ----------------------------------------------------------
    def _write_loop(self) -> None:
        while not self._stop.is_set():
            timeout = None
            if self._retry_at:
                timeout = max(0.0, self._retry_at - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._retry_at = 0.0
            with self._lock:
                if self._conn is None:
                    continue
                cmds = self._commands()
                if not cmds:
                    continue
                for c in cmds:
                    self._inflight.append(_Inflight(c, self._decided_at))
                    for prefix, attrs in c.changes:
                        if attrs is None:
                            self._sent.pop(prefix, None)
                        else:
                            self._sent[prefix] = attrs
            self._send_lines([c.line for c in cmds])

    def _commands(self) -> list[Command]:
        """What to send: the difference on the changed prefixes, or on everything."""
        pending, self._pending = self._pending, set()
        if pending is None:
            return commands(self._desired, self._sent)
        desired, sent = self._desired, self._sent
        want = {p: desired[p] for p in pending if p in desired}
        have = {p: sent[p] for p in pending if p in sent}
        return commands(want, have)

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
                line = raw.strip()
                if line:
                    self._on_line(line)

    def _on_line(self, line: bytes) -> None:
        if line == b"done":
            self._ack(True)
            return
        if line == b"error":
            self._ack(False)
            return
        if not line.startswith(b"{"):
            return
        try:
            msg = json.loads(line)
        except ValueError:
            text = line[:200].decode(errors="replace")
            self._log.warning("unparseable line from exabgp", line=text)
            return
        kind = msg.get("type")
        if kind == "state":
            nb = msg.get("neighbor", {})
            self._set_state(str(nb.get("state", "down")), nb.get("reason"))
        elif kind == "update":
            self._on_update(msg)
        elif kind == "notification":
            self._on_notification(msg)

    def _ack(self, ok: bool) -> None:
        with self._lock:
            if not self._inflight:
                return
            item = self._inflight.popleft()
            if ok:
                for prefix, attrs in item.cmd.changes:
                    if attrs is None:
                        self._acked.pop(prefix, None)
                    else:
                        self._acked[prefix] = attrs
            else:
                for prefix, _ in item.cmd.changes:
                    old = self._acked.get(prefix)
                    if old is None:
                        self._sent.pop(prefix, None)
                    else:
                        self._sent[prefix] = old
                    if self._pending is not None:
                        self._pending.add(prefix)  # re-sent after RETRY_AFTER_ERROR
                self._retry_at = time.monotonic() + RETRY_AFTER_ERROR
        if ok:
            self._event(
                "ack",
                {"latency": time.monotonic() - item.decided_at, "changes": len(item.cmd.changes)},
            )
        else:
            self._log.error("exabgp rejected a command", command=item.cmd.line[:200])
            self._event("error", {})
            self._wake.set()

    def _on_update(self, msg: dict[str, Any]) -> None:
        nb = msg.get("neighbor", {})
        if nb.get("direction") != "send":
            return
        update = nb.get("message", {}).get("update", {})
        self.session.updates_sent += 1
        self._event("update_sent", {})
        withdrawn = update.get("withdraw", {})
        if withdrawn and self._wire_pending:
            with self._lock:
                for entries in withdrawn.values():
                    for e in entries:
                        self._wire_pending.discard(str(e.get("nlri")))

    def _on_notification(self, msg: dict[str, Any]) -> None:
        nb = msg.get("neighbor")
        if not isinstance(nb, dict):
            return  # ExaBGP's own "shutdown" notice to its API process
        n = nb.get("notification", {})
        direction = nb.get("direction", "?")
        text = f"{direction} notification {n.get('code')}/{n.get('subcode')}"
        data = str(n.get("data", ""))
        if data.startswith("0x") and len(data) > 4:
            try:
                raw = bytes.fromhex(data[2:])
                text += f" {raw[1:].decode(errors='replace')!r}" if raw else ""
            except ValueError:
                pass
        self.session.last_notification = text
        self.session.last_error = text
        self._log.warning("bgp notification", notification=text)

    def _set_state(self, state: str, reason: str | None) -> None:
        old = self.session.state
        if state == old and reason is None:
            return
        self.session.state = state
        self.session.since = time.time()
        if reason:
            self.session.last_error = str(reason)
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
