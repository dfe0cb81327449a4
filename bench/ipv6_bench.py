"""IPv6 routes on SIGTERM: this tree's announcer against a baseline tree's, at FRR.

Run: ``.venv/bin/python -m bench.ipv6_bench --baseline-code DIR`` (not part of
``make test``), where DIR is a checkout of the code to compare with (``git worktree add``).
One control plane, one FRR (bgpd) and one announcer node whose BGPPeer carries IPv6 over
its IPv4 session; ``--routes`` IPv6 Services, one /128 each. Each round cold-starts the
announcer from one tree, waits until FRR accepted every /128, then SIGTERMs it and
measures: the seconds until the announcer's Cease (its own log), until FRR holds none of
the routes (polled), and the UPDATEs FRR counted each way. Rounds alternate between the
two trees, so both see the same machine. Figures: bench/ANNOUNCER.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import exalb.assignments as contract
from bench.announcer_bench import NS, cease_decided, one_router_bed, write_shards
from testbed.binaries import ROOT
from testbed.lab import Lab
from testbed.procs import wait_for
from testbed.routers.frr import Frr

BULK_NET = ipaddress.ip_network("2001:db8:b::/112")  # routes only: nothing sends to them
POLL = 0.05  # seconds between FRR counter reads (a vtysh call takes about 20 ms)


def wait_accepted(router: Frr, peer: str, count: int, timeout: float) -> float:
    """Seconds until FRR's accepted IPv6 prefixes from ``peer`` are ``count``."""
    t0 = time.monotonic()
    wait_for(
        f"FRR accepted {count} IPv6 prefixes",
        lambda: router.accepted_ipv6(peer) == count,
        timeout,
        interval=POLL,
        on_timeout=lambda: f"it holds {router.accepted_ipv6(peer)}",
    )
    return time.monotonic() - t0


def one_round(lab: Lab, router: Frr, code: Path, routes: int) -> dict[str, Any]:
    """Cold start from ``code`` until FRR holds every route; SIGTERM until it holds none."""
    peer = lab.source(1)
    before = router.updates_received(peer)
    t0 = time.monotonic()
    proc = lab.start_announcer(1, code=code)
    wait_accepted(router, peer, routes, 600)
    announced_s = time.monotonic() - t0
    announce_updates = router.updates_received(peer) - before
    time.sleep(2)  # settled: ExaBGP has reported every UPDATE it sent
    before = router.updates_received(peer)
    t0, t0_wall = time.monotonic(), time.time()
    proc.signal(signal.SIGTERM)
    withdrawn_s = wait_accepted(router, peer, 0, 120)
    proc.popen.wait(30)
    proc.stop()
    decided = cease_decided(proc.log, t0_wall)
    if decided is None:
        raise RuntimeError(f"the announcer logged no Cease: see {proc.log}")
    at, how, left = decided
    return {
        "code": str(code),
        "announced_s": round(announced_s, 2),
        "announce_updates": announce_updates,
        "withdrawn_at_router_s": round(withdrawn_s, 3),
        "cease_s": round(at - t0_wall, 3),
        "cease": how,
        "left_to_cease": left,
        # FRR counts UPDATEs of a session it still has; after the Cease it may reset them.
        "withdraw_updates_seen": max(0, router.updates_received(peer) - before),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("announced_s", "announce_updates", "withdrawn_at_router_s", "cease_s")
    return {f"median_{k}": statistics.median(r[k] for r in runs) for k in keys}


def run(baseline: Path, routes: int, rounds: int) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` rounds of each tree, alternating: this one first, then ``baseline``."""
    with one_router_bed(Frr, 91, "exalb-ipv6-bench-", remove_work=True) as bed:
        bed.lab.add_peer("tor", bed.router, dualStackAddressFamily=True)
        bed.lab.add_pool("bulk", [str(BULK_NET)])
        bed.lab.add_node(1, start=False)
        publish(bed.lab, bed.core, routes)
        runs: dict[str, list[dict[str, Any]]] = {"this": [], "baseline": []}
        for _ in range(rounds):
            for name, code in (("this", ROOT), ("baseline", baseline.resolve())):
                result = one_round(bed.lab, bed.router, code, routes)
                print(f"{name}: {json.dumps(result)}", flush=True)
                runs[name].append(result)
        return runs


def publish(lab: Lab, core: Any, routes: int) -> None:
    """``routes`` IPv6 Services, each with a ready endpoint on node 1 and an assignment."""
    hosts = [str(a) for a, _ in zip(BULK_NET.hosts(), range(routes), strict=False)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: lab.set_endpoints(f"s{i}", {1: True}), range(routes)))
    entries = {
        a.key: contract.encode(a)
        for a in (
            contract.Assignment(NS, f"s{i}", f"u{i}", (h,), "bulk") for i, h in enumerate(hosts)
        )
    }
    write_shards(core, entries, contract.shard_count(entries))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline-code", type=Path, required=True)
    ap.add_argument("--routes", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3, help="rounds per tree")
    args = ap.parse_args(argv)
    runs = run(args.baseline_code, args.routes, args.rounds)
    print(json.dumps({name: summary(r) for name, r in runs.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
