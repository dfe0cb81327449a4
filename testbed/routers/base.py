"""What every router in the harness offers: start/stop, sessions, RIB, waits."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed.procs import Proc, wait_for


@dataclass(frozen=True)
class Neighbor:
    """A peer the router accepts sessions from (routers are passive in tests)."""

    address: str
    asn: int
    password: str | None = None
    # GoBGP sends End-of-RIB only with graceful restart (RFC 4724) negotiated; FRR (a
    # helper by default) and BIRD ("aware" by default) need nothing configured for it.
    graceful_restart: bool = False


@dataclass(frozen=True)
class Session:
    """One neighbor as the router reports it."""

    peer: str
    state: str  # lower-case FSM state: idle, connect, active, opensent, openconfirm, established
    uptime_s: float | None = None  # seconds established, None when not established
    last_error: str | None = None  # the router's words for the last reset/notification

    @property
    def established(self) -> bool:
        return self.state == "established"


@dataclass(frozen=True)
class RibPath:
    """One path to a prefix in the router's RIB."""

    prefix: str
    next_hop: str
    as_path: tuple[int, ...] = ()
    origin: str = ""  # igp, egp, incomplete
    communities: tuple[str, ...] = ()  # "65000:100"
    large_communities: tuple[str, ...] = ()  # "64512:1:2"
    local_pref: int | None = None
    med: int | None = None
    peer: str | None = None
    extended_community: str = ""  # the router's text, e.g. FRR's "LB:64513:1250000 (10.000 Mbps)"
    selected: bool | None = None  # best or multipath (installed); None: the router does not say


@dataclass
class Router(ABC):
    """A router process on ``address:port`` with ``asn`` that accepts ``neighbors``."""

    address: str
    port: int
    asn: int
    neighbors: Sequence[Neighbor]
    workdir: Path
    router_id: str = ""
    proc: Proc | None = field(default=None, init=False)

    kind = "router"

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.router_id:
            self.router_id = self.address

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def sessions(self) -> dict[str, Session]: ...

    @abstractmethod
    def rib(self) -> dict[str, list[RibPath]]:
        """prefix -> every path the router holds for it (ECMP shows as several paths)."""

    def updates_received(self, peer: str) -> int:
        """UPDATE messages received from ``peer`` so far, withdrawals included.

        A flap (withdraw, then announce again) costs at least one UPDATE, so an
        unchanged count over a window proves the router was sent nothing.
        """
        raise NotImplementedError(f"{self.kind} in the testbed exposes no UPDATE counter")

    @abstractmethod
    def uptime_since(self, peer: str) -> float | None:
        """When the session with ``peer`` was established (epoch seconds, to the second), or
        None when it is not: a later value than before means the session was reset."""

    def shutdown_neighbor(self, peer: str, message: str) -> None:
        """Administratively shut the session with ``peer`` down, with an RFC 8203 message."""
        raise NotImplementedError(f"{self.kind} in the testbed cannot shut a neighbor down")

    def enable_neighbor(self, peer: str) -> None:
        """Undo :meth:`shutdown_neighbor`."""
        raise NotImplementedError(f"{self.kind} in the testbed cannot shut a neighbor down")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        return f"--- {self.kind} {self.address} log ---\n" + (self.proc.tail() if self.proc else "")

    # --- waits -----------------------------------------------------------
    def wait_session(self, peer: str, state: str = "established", timeout: float = 30) -> Session:
        wait_for(
            f"{self.kind} {self.address}: session with {peer} {state}",
            lambda: self.sessions().get(peer, Session(peer, "none")).state == state,
            timeout,
            interval=0.1,
            on_timeout=lambda: f"sessions: {self.sessions()}\n{self.log_tail()}",
        )
        return self.sessions()[peer]

    def wait_rib(
        self,
        what: str,
        check: Callable[[dict[str, list[RibPath]]], bool],
        timeout: float = 20,
        interval: float = 0.05,
    ) -> dict[str, list[RibPath]]:
        seen: dict[str, list[RibPath]] = {}

        def probe() -> bool:
            nonlocal seen
            seen = self.rib()
            return check(seen)

        wait_for(
            f"{self.kind} {self.address}: {what}",
            probe,
            timeout,
            interval=interval,
            on_timeout=lambda: f"rib: {seen}\n{self.log_tail()}",
        )
        return seen

    def wait_next_hops(self, prefix: str, hops: set[str], timeout: float = 20) -> list[RibPath]:
        rib = self.wait_rib(
            f"{prefix} via exactly {sorted(hops)}",
            lambda r: {p.next_hop for p in r.get(prefix, [])} == hops,
            timeout,
        )
        return rib.get(prefix, [])

    def wait_absent(self, prefix: str, timeout: float = 20) -> None:
        self.wait_rib(f"{prefix} gone", lambda r: prefix not in r, timeout)


def settle(seconds: float) -> None:
    """Sleep used only where a test must prove that something does *not* happen."""
    time.sleep(seconds)
