"""The scale benchmark at a tiny size, so that it cannot rot between its real runs.

Three nodes (two, then three announcers) and 30 Services: every measurement of
``bench/scale_bench.py`` runs, against the real API server and GoBGP; the figures are
not judged, only that they were taken and that the router got every node's routes.
"""

from __future__ import annotations

from pathlib import Path

from bench import scale_bench


def test_the_scale_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    out = scale_bench.run(
        tmp_path, [2, 3], services=30, seconds=3, rate=4, progress=print, others=20, narrowed=True
    )
    baseline, full = out["steps"]["0"], out["steps"]["3"]
    assert "readiness_to_rib" not in baseline  # nothing announces without announcers
    assert full["readiness_to_rib"]["n"] >= 6
    # Every value is one flip's time, never a wait's (a bug once timed the last restore from 0).
    assert full["readiness_to_rib"]["max_ms"] <= scale_bench.FLIP_TIMEOUT * 1000
    # Three announcers watch every EndpointSlice: the flips now reach watchers.
    assert full["watch_kib_per_s_by_resource"].get("endpointslices", 0) > 0
    assert full["watches_open"] > baseline["watches_open"]
    assert full["announcer_rss_mib"]["median"] > 0
    restart = out["full_restart"]
    assert restart["nodes"] == 3 and restart["paths_left_after_stop"] == 0
    assert restart["converged_s"] > 0
    assert restart["nodes_killed_at_30s"] == 0
    assert restart["nodes_withdrew_then_ceased"] == 3
    # Counted from the announcers' logs; on a quiet tiny cluster no list or watch fails.
    assert full["failed_lists_and_watches"] == restart["failed_lists_and_watches"] == 0

    # The shards vouch for the label: every node narrows, and the router loses no path.
    assert out["narrow"]["fewest_paths_meanwhile"] == out["narrow"]["paths"] > 0
    narrowed = out["narrowed"]
    assert narrowed["readiness_to_rib"]["n"] >= 6
    # Only the probes' flips reach the nodes now, not those of the Services exalb ignores.
    # Counted per flip: a rate would depend on how fast the router follows each flip.
    assert narrowed["endpointslice_events_per_flip"] < full["endpointslice_events_per_flip"]
    assert out["full_restart_narrowed"]["paths_left_after_stop"] == 0
