"""The announcer's handle on the BFD speaker process (:mod:`announcer.bfd.daemon`).

The announcer says which sessions it wants (:meth:`BfdSpeaker.configure`, level-triggered:
always the whole set) and learns of each peer going up or down through ``on_change``.
A session counts as up only while the daemon says ``Up``: a daemon that dies takes every
session down with it, and is started again with the same sessions.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog

from exalb.bgppeer import Timers

RESTART_DELAY = 1.0  # seconds between a daemon's death and its replacement

log = structlog.get_logger("announcer.bfd")


@dataclass(frozen=True)
class BfdPeer:
    """One wanted session: a BGPPeer's name, address, session source and ``spec.bfd``."""

    name: str
    address: str
    source_address: str | None
    timers: Timers

    def command(self) -> str:
        t = self.timers
        local = self.source_address or "-"
        return (
            f"session {self.name} {self.address} {local} "
            f"{t.min_tx_ms} {t.min_rx_ms} {t.detect_multiplier}\n"
        )


class BfdSpeaker:
    """Runs the daemon, keeps it configured, and reports each peer's up/down.

    ``on_change(peer, up)`` runs on this object's reader thread, once per change of
    up-ness, and with ``up=None`` (from :meth:`configure`) once a peer's session is no
    longer wanted: no BFD to report on. It must not block for long. ``argv_prefix``
    runs the daemon through a wrapper (tests use ``ip netns exec <ns>``).
    """

    def __init__(
        self, on_change: Callable[[str, bool | None], None], argv_prefix: Sequence[str] = ()
    ) -> None:
        self.on_change = on_change
        self.argv = [*argv_prefix, sys.executable, "-m", "announcer.bfd.daemon"]
        self.lock = threading.Lock()
        self.wanted: dict[str, BfdPeer] = {}
        self.up: dict[str, bool] = {}
        self.ever_up: set[str] = set()
        self.stopping = threading.Event()
        self.process: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None

    def start(self) -> None:
        """Run the daemon (idempotent); :meth:`configure` calls it for the first session."""
        with self.lock:
            if self.reader is not None or self.stopping.is_set():
                return
            self.reader = threading.Thread(target=self._supervise, name="bfd-reader", daemon=True)
        self.reader.start()

    def configure(self, peers: Iterable[BfdPeer]) -> None:
        """The whole set of wanted sessions; peers left out are removed.

        The daemon starts with the first wanted session: a node whose peers run no BFD
        runs no extra process.
        """
        wanted = {p.name: p for p in peers}
        if wanted:
            self.start()
        with self.lock:
            lines = [p.command() for n, p in wanted.items() if self.wanted.get(n) != p]
            lines += [f"remove {n}\n" for n in self.wanted.keys() - wanted.keys()]
            gone = sorted(self.wanted.keys() - wanted.keys())
            for name in gone:
                self.up.pop(name, None)
            self.ever_up &= wanted.keys()
            self.wanted = wanted
            self._write("".join(lines))
        for name in gone:
            self.on_change(name, None)

    def is_up(self, name: str) -> bool:
        with self.lock:
            return self.up.get(name, False)

    def holds_down(self, name: str) -> bool:
        """Whether BGP with this peer must stay down: its BFD session was Up and is not now.

        A session that never came Up holds nothing (RFC 5882 §4.3: the router may not run
        BFD at all), like FRR's own ``neighbor ... bfd``.
        """
        with self.lock:
            return name in self.ever_up and not self.up.get(name, False)

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            process = self.process
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.reader is not None:
            self.reader.join(timeout=5)

    def _write(self, text: str) -> None:
        """Called with the lock held; a dead daemon gets the whole set when restarted."""
        if not text or self.process is None or self.process.stdin is None:
            return
        try:
            self.process.stdin.write(text)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def _supervise(self) -> None:
        """Start the daemon (again after each death) and read its state lines."""
        while not self.stopping.is_set():
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,  # its log joins ours
                text=True,
                bufsize=1,
                process_group=0,  # a ^C to the announcer's group is the announcer's to handle
            )
            with self.lock:
                self.process = process
                self._write("".join(p.command() for p in self.wanted.values()))
            assert process.stdout is not None
            for line in process.stdout:
                self._state_line(line)
            process.wait()
            if not self.stopping.is_set():
                log.error("bfd daemon exited; restarting", returncode=process.returncode)
            self._all_down()
            self.stopping.wait(RESTART_DELAY)

    def _state_line(self, line: str) -> None:
        words = line.split()
        if len(words) != 4 or words[0] != "state":
            log.error("unexpected line from the bfd daemon", line=line.rstrip())
            return
        name, up = words[1], words[2] == "Up"
        with self.lock:
            if name not in self.wanted or self.up.get(name, False) == up:
                return
            self.up[name] = up
            if up:
                self.ever_up.add(name)
        log.info("bfd session", peer=name, state=words[2], diag=int(words[3]))
        self.on_change(name, up)

    def _all_down(self) -> None:
        with self.lock:
            were_up = [n for n, up in self.up.items() if up]
            self.up = {}
        for name in were_up:
            self.on_change(name, False)
