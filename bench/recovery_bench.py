"""ExaBGP SIGKILLed: how long until its routes are back at each router.

Run: ``.venv/bin/python -m bench.recovery_bench`` (not part of ``make test``). One
announcer ``Speaker`` (our launcher and a real ExaBGP, no API server: recovery does not
involve it) peers with a real GoBGP, FRR and BIRD in turn, each passive as in the
tests. Per run: the session is up with all routes at the router; ExaBGP gets SIGKILL;
times from the kill to

* ``spawned``: the speaker started the new ExaBGP (told the spare launcher "go");
* ``api``: that ExaBGP has read its seeded config and connected its API process;
* ``up``: ExaBGP reports the session Established (the speaker's own event);
* ``router_up``: the router reports it Established (polled);
* ``routes``: the router's RIB holds every route again (polled).

Router-side times are polled, so they are late by up to one poll (``poll_s``, the
median time one ``sessions()`` + ``rib()`` round took). Figures go to
bench/ANNOUNCER.md by hand, with the load average printed here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from announcer.core.model import Attrs
from announcer.exabgp.speaker import Speaker
from exalb.bgppeer import Peer
from testbed.procs import free_port, wait_for
from testbed.routers import KINDS, Neighbor, Router

ROUTER, SOURCE, HOP = "127.1.250.1", "127.1.250.10", "192.0.2.10"
SETTLE = 5.0  # the session runs this long before each kill, and the router rests after


class Marks:
    """Monotonic time of each speaker event, for the run in progress."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, kind: str, details: dict[str, Any]) -> None:
        name = {"exabgp_started": "spawned", "seeded": "api"}.get(kind)
        if kind == "state" and details.get("state") == "up":
            name = "up"
        if name is None:
            return
        with self._lock:
            self.at.setdefault(name, time.monotonic())

    def reset(self) -> None:
        with self._lock:
            self.at.clear()


def one_run(r: Router, speaker: Speaker, marks: Marks, prefixes: set[str]) -> dict[str, float]:
    proc = speaker._proc  # the running ExaBGP: the one a crash would take
    assert proc is not None
    marks.reset()
    t0 = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    out: dict[str, float] = {}
    polls: list[float] = []
    seen_down = False
    while time.monotonic() - t0 < 120:
        start = time.monotonic()
        session = r.sessions().get(SOURCE)
        now = time.monotonic()
        if session is None or not session.established:
            seen_down = True
        elif "router_up" not in out and (
            seen_down or (session.uptime_s is not None and session.uptime_s < now - t0)
        ):
            out["router_up"] = now - t0
        if "router_up" in out and prefixes <= set(r.rib()):
            out["routes"] = time.monotonic() - t0
            polls.append(time.monotonic() - start)
            break
        polls.append(time.monotonic() - start)
        time.sleep(0.02)  # polls spawn the router's CLI: leave the CPU to the recovery
    else:
        raise TimeoutError(f"{r.kind}: routes not back within 120 s: {out}")
    wait_for("the speaker's own marks", lambda: {"spawned", "api", "up"} <= set(marks.at), 60)
    out.update({k: v - t0 for k, v in marks.at.items()})
    out["poll_s"] = statistics.median(polls)
    return {k: round(v, 3) for k, v in out.items()}


def _spare_ready(speaker: Speaker) -> bool:
    return speaker._spare is not None


def bench_router(
    kind: str, routes: int, runs: int, work: Path, connect_time: int | None
) -> dict[str, Any]:
    """``runs`` kills, each of a fresh speaker's ExaBGP: its first restart, as in production."""
    r = KINDS[kind](
        address=ROUTER,
        port=free_port(ROUTER),
        asn=64512,
        neighbors=[Neighbor(SOURCE, 64513)],
        workdir=work / kind,
    )
    r.start()
    peer = Peer("tor", 64513, 64512, ROUTER, port=r.port, hold_time=9, connect_time=connect_time)
    table = {f"198.18.{i // 250}.{i % 250 + 1}/32": Attrs(HOP) for i in range(routes)}
    samples = []
    try:
        for i in range(runs):
            marks = Marks()
            speaker = Speaker(
                peer,
                SOURCE,
                SOURCE,
                work / f"{kind}-{i}",
                "bench",
                observer=marks.observe,
                spare=True,  # the announcer's --exabgp-spare
            )
            try:
                speaker.start()
                speaker.set_desired(table)
                wait_for(f"{kind}: all routes", lambda: set(table) <= set(r.rib()), 120, 0.2)
                wait_for(f"{kind}: the spare launcher", partial(_spare_ready, speaker), 60)
                time.sleep(SETTLE)
                load = os.getloadavg()[0]
                sample = one_run(r, speaker, marks, set(table))
            finally:
                speaker.stop()
            sample["load_1m"] = round(load, 2)
            print(kind, i, json.dumps(sample), flush=True)
            samples.append(sample)
            # The router's session is down again after stop(): let it settle to Idle/Active.
            time.sleep(SETTLE)
    finally:
        r.stop()
    keys = ["spawned", "api", "up", "router_up", "routes", "poll_s", "load_1m"]
    medians = {k: round(statistics.median(s[k] for s in samples), 3) for k in keys}
    return {"runs": samples, "median": medians}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--routes", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--routers", default="gobgp,frr,bird")
    ap.add_argument(
        "--connect-time",
        type=int,
        default=None,
        help="the BGPPeer's connectTime: ExaBGP retries at this fixed interval "
        "(default: ExaBGP's own back-off, 1 s, 2 s, 3 s ...)",
    )
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="exalb-recovery-bench-"))
    results = {
        k: bench_router(k, args.routes, args.runs, work, args.connect_time)
        for k in args.routers.split(",")
    }
    print(json.dumps({k: v["median"] for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
