"""The IPv6 benchmark at a tiny size (this tree against itself), so it cannot rot."""

from __future__ import annotations

from bench import ipv6_bench
from testbed.binaries import ROOT


def test_the_ipv6_benchmark_runs_and_the_routes_share_updates() -> None:
    runs = ipv6_bench.run(ROOT, routes=40, rounds=1)
    for result in runs["this"] + runs["baseline"]:
        assert result["cease"] == "withdrawn" and result["left_to_cease"] == 0
        # 40 /128s of one attribute set: one UPDATE and the End-of-RIB, not 40 (fix 10)
        assert 1 <= result["announce_updates"] <= 3
        assert 1 <= result["withdraw_updates_seen"] <= 2
        assert 0 <= result["withdrawn_at_router_s"] <= result["cease_s"] + 1
