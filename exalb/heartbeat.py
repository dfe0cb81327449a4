"""An announcer's heartbeat: the Lease it renews, and whether it still runs.

The BGPSessionStatus is written only when something changes, so a SIGKILLed announcer
leaves "session up" behind for good. As the kubelet does for its Node (a Lease in
``kube-node-lease``, renewed every quarter of its duration; the Node status only on
change), each announcer renews the Lease ``exalb-announcer-<node>`` in exalb's namespace:
one small write per interval, read by no process, only by ``exalbctl`` when asked. As
the kubelet's, it is not released on a clean shutdown: a node whose announcer stopped
announces nothing, whatever the reason, and is reported so once the Lease expires.

Judged on the reader's clock: ``now - renewTime`` past the lease duration is stale. A
renewTime more than one duration ahead of the reader's clock is not taken as fresh (it
would stay fresh for as long as the clocks stay apart): one of the two clocks is wrong,
and the heartbeat cannot say whether the announcer runs. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

LEASE_PREFIX = "exalb-announcer-"
RENEWALS_PER_DURATION = 4  # the kubelet's ratio: three renewals may fail before it expires

ALIVE = "alive"
STALE = "stale"  # not renewed for longer than its duration: the announcer is not running
MISSING = "missing"  # no Lease: no announcer ever ran there, or one older than heartbeats
CLOCK_SKEW = "clockSkew"  # renewed further in the future than the lease lasts


def lease_name(node: str) -> str:
    return LEASE_PREFIX + node


def renew_interval(duration: float) -> float:
    return duration / RENEWALS_PER_DURATION


@dataclass(frozen=True)
class Heartbeat:
    """What a heartbeat Lease says."""

    holder: str  # the node whose announcer renews it
    renewed: float | None  # epoch seconds of the last renewal; None when it carries none
    duration: float  # seconds


@dataclass(frozen=True)
class Liveness:
    state: str  # ALIVE | STALE | MISSING | CLOCK_SKEW
    age: float | None  # seconds since the last renewal on the reader's clock (< 0: ahead)
    message: str  # "" when ALIVE

    @property
    def alive(self) -> bool:
        return self.state == ALIVE


def heartbeat_from(lease: Mapping[str, Any]) -> Heartbeat:
    spec = lease.get("spec") or {}
    return Heartbeat(
        holder=str(spec.get("holderIdentity") or ""),
        renewed=epoch(str(spec.get("renewTime") or "")),
        duration=float(spec.get("leaseDurationSeconds") or 0),
    )


def epoch(timestamp: str) -> float | None:
    """RFC 3339 (a MicroTime or a Time) -> epoch seconds; None when it is not one."""
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if parsed.tzinfo is None else parsed.timestamp()


def liveness(heartbeat: Heartbeat | None, now: float) -> Liveness:
    """Whether the announcer that renews ``heartbeat`` runs, as seen at ``now`` (epoch)."""
    if heartbeat is None:
        return Liveness(MISSING, None, "no heartbeat Lease (an announcer older than heartbeats?)")
    if heartbeat.renewed is None:
        return Liveness(STALE, None, "announcer not running: its heartbeat Lease was never renewed")
    age = now - heartbeat.renewed
    every = f"expected every {_seconds(renew_interval(heartbeat.duration))}"
    if age < -heartbeat.duration:
        return Liveness(
            CLOCK_SKEW,
            age,
            f"heartbeat renewed {_seconds(-age)} ahead of this clock, more than its "
            f"{_seconds(heartbeat.duration)} lease: the node's clock or this one is wrong, "
            "so whether its announcer runs is unknown",
        )
    if age > heartbeat.duration:
        return Liveness(
            STALE, age, f"announcer not running: no heartbeat for {_seconds(age)} ({every})"
        )
    return Liveness(ALIVE, age, "")


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if abs(value) >= 10 else f"{value:.1f} s"
