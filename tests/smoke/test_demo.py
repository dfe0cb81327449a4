"""`make demo`, the README's first command, runs to its end and shows each step."""

from __future__ import annotations

import re

import pytest

from testbed import demo


def test_the_demo_shows_every_step_and_stops_everything(capsys: pytest.CaptureFixture[str]) -> None:
    demo.main()
    out = capsys.readouterr().out
    for step in range(1, 8):
        assert re.search(rf"^\n?{step}\. ", out, re.M), f"step {step} missing:\n{out}"
    # Cluster: both nodes are next hops; Local: only node 2; then node 1 drained.
    assert "(ECMP)" in out and "only the node with a ready endpoint" in out
    assert "it withdrew its routes before closing the session" in out
    assert out.rstrip().endswith("demo done; everything stopped")
