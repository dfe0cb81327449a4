"""The plan benchmark at a tiny size, so that it cannot rot between its real runs."""

from __future__ import annotations

from bench import plan_bench


def test_the_plan_benchmark_runs_and_every_create_is_planned_incrementally() -> None:
    out = plan_bench.run(services=100, creates=5)
    assert out["services"] == 100
    assert out["per_create_ms"]["n"] == 5 and out["per_create_ms"]["p50"] > 0
    # Each create is two plans (the Service, then its status), both from the changes alone.
    assert out["incremental_plans"] == 10
