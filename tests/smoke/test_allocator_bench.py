"""The allocator benchmark at a tiny size, so that it cannot rot between its real runs.

Forty Services allocated at start-up, a few creates one at a time and a small burst, on
both clusters, against the real API server and the allocator's own process: every figure
of ``bench/allocator_bench.py`` is taken; none is judged, only that it was taken.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import allocator_bench


def test_the_allocator_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "allocator.json"
    results = allocator_bench.run(out, 40, samples=5, burst_size=10)

    assert json.loads(out.read_text()) == results  # written whole, as the real run reads it
    assert results["allocate_40_s"] > 0
    assert results["settled_after_40_s"] >= 1
    assert results["configmap_at_40"]["entries"] == 40
    for key in ("single_empty", "single_with_40_existing"):
        assert results[key]["n"] == 5
        assert results[key]["per_create"]["passes"] > 0
    assert results["burst_10_with_40_existing"]["n"] == 10
    assert results["create_request_no_allocator_with_40_existing"]["n"] == 5
    assert results["p99_ratio_to_empty"] > 0
    assert results["rss_at_40_kib"]["rss"] > 0
    for key in ("control_plane_idle_empty", "control_plane_idle_with_40_existing"):
        assert set(results[key]["cores"]) >= {"kube-apiserver", "etcd"}
