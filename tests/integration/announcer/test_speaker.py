"""One peer's Speaker with a real ExaBGP and GoBGP, without the API server.

* A peer never has two ExaBGP processes: a speaker that replaces a retiring one
  (a peer restart) starts its ExaBGP only once the old one has exited, even while
  the old one lingers withdrawing; without a predecessor to wait for, the two
  overlap (the control that shows the test can see an overlap).
* A seed is announced whichever way it is written: grouped when our launcher
  reported its fix in place, one route per line when its report does not name the
  fix, and one route per line to an unpatched ``exabgp``.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from announcer.core.model import Attrs
from announcer.core.shutdown import ShutdownTimes
from announcer.exabgp.speaker import Speaker
from exalb.bgppeer import Peer
from testbed.procs import wait_for
from testbed.routers import Neighbor, Router
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

ROUTER, SOURCE, HOP = "127.1.240.1", "127.1.240.10", "192.0.2.10"
ROUTES = {f"198.51.100.{i}/32": Attrs(HOP) for i in range(1, 4)}


class Timeline:
    """(monotonic time, speaker, event kind, details) of every speaker event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def observer(self, who: str) -> Any:
        def observe(kind: str, details: dict[str, Any]) -> None:
            with self._lock:
                self.events.append((time.monotonic(), who, kind, details))

        return observe

    def has(self, who: str, kind: str) -> bool:
        return any(w == who and k == kind for _, w, k, _ in self.events)

    def at(self, who: str, kind: str) -> float:
        return next(t for t, w, k, _ in self.events if w == who and k == kind)


# Withdraw everything explicitly, then keep the session 2 s more before the Cease.
HOLD_2S = ShutdownTimes(budget=10.0, hold=2.0, timeout=10.0)


def _speaker(r: Router, workdir: Path, timeline: Timeline, who: str, **kw: Any) -> Speaker:
    peer = Peer(who, 64513, r.asn, r.address, port=r.port, hold_time=9)
    return Speaker(
        peer, SOURCE, SOURCE, workdir, node="node-1", observer=timeline.observer(who), **kw
    )


def test_a_replacing_speaker_starts_exabgp_only_after_the_old_one_exited(
    router: RouterFactory, tmp_path: Path
) -> None:
    r = router("gobgp", ROUTER, 64512, [Neighbor(SOURCE, 64513)])
    timeline = Timeline()
    workdir = tmp_path / "tor"
    old = _speaker(r, workdir, timeline, "old").start()
    speakers = [old]
    try:
        old.set_desired(ROUTES)
        r.wait_next_hops("198.51.100.1/32", {HOP}, timeout=60)
        # The old speaker withdraws, then keeps its session 2 s more (hold), as a peer
        # restart does while the new speaker is already asked to start.
        retiring = threading.Thread(target=old.shutdown, kwargs={"times": HOLD_2S})
        retiring.start()
        new = _speaker(r, workdir, timeline, "new", predecessor=old).start()
        speakers.append(new)
        new.set_desired(ROUTES)
        retiring.join(30)
        assert old.wait_stopped(30)
        r.wait_next_hops("198.51.100.1/32", {HOP}, timeout=60)
        assert timeline.at("new", "exabgp_started") >= timeline.at("old", "exabgp_exited")

        # The control: without a predecessor to wait for, the processes overlap.
        retiring = threading.Thread(target=new.shutdown, kwargs={"times": HOLD_2S})
        retiring.start()
        time.sleep(0.2)
        eager = _speaker(r, tmp_path / "eager", timeline, "eager").start()
        speakers.append(eager)
        eager.set_desired(ROUTES)
        retiring.join(30)
        assert new.wait_stopped(30)
        assert timeline.at("eager", "exabgp_started") < timeline.at("new", "exabgp_exited")
    finally:
        for sp in speakers:
            sp.stop()


@pytest.mark.parametrize("how", ["launcher", "unpatched-exabgp"])
def test_a_seed_reaches_the_router_however_it_is_written(
    router: RouterFactory, tmp_path: Path, how: str
) -> None:
    # A launcher whose report lacks the grouped-seed fix makes the speaker seed route
    # by route, as for an unpatched ExaBGP (the decision: tests/unit/announcer/test_launcher.py).
    launched = how != "unpatched-exabgp"
    grouped = how == "launcher"
    r = router("gobgp", ROUTER, 64512, [Neighbor(SOURCE, 64513)])
    timeline = Timeline()
    exabgp = None if launched else str(Path(sys.executable).parent / "exabgp")
    sp = _speaker(r, tmp_path / "tor", timeline, "tor", exabgp=exabgp)
    sp.set_desired(ROUTES)  # known before the process starts: all of it goes in the seed
    sp.start()
    try:
        for prefix in ROUTES:
            r.wait_next_hops(prefix, {HOP}, timeout=60)
        conf = (tmp_path / "tor" / "exabgp.conf").read_text()
        assert (" nlri " in conf) is grouped  # grouped only when the launcher said so
        assert conf.count("route 198.51.100.") == (0 if grouped else len(ROUTES))
        # ExaBGP may announce its seed before its API process connects: wait for that too.
        wait_for("the seed counted as announced", lambda: timeline.has("tor", "seeded"), 60)
        seeded = [d for _, _, k, d in timeline.events if k == "seeded"]
        assert seeded[0]["routes"] == len(ROUTES)
    finally:
        sp.stop()
