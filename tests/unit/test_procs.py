"""A niced Proc is niced as a whole: its process, what it starts, and its session's autogroup.

The scale bench runs 100 simulated nodes beside one control plane and nices them so the
API server keeps its share; with one autogroup per session, a niced process alone
would still get as much CPU as the API server (bench/SCALE.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from testbed.procs import Proc


def test_a_niced_proc_and_its_children_run_niced_and_so_does_its_session(tmp_path: Path) -> None:
    proc = Proc("sleeper", ["sh", "-c", "sleep 30 & wait"], tmp_path / "sleeper.log", nice=10)
    try:
        autogroup = Path(f"/proc/{proc.pid}/autogroup")
        if autogroup.exists():  # the kernel has autogroups: the session's is niced at once
            assert autogroup.read_text().split()[-2:] == ["nice", "10"]
        # `nice` sets its own priority, then runs the shell, which starts sleep.
        assert _eventually(lambda: os.getpriority(os.PRIO_PROCESS, proc.pid) == 10)
        assert _eventually(lambda: bool(_children(proc.pid)))
        assert all(os.getpriority(os.PRIO_PROCESS, c) == 10 for c in _children(proc.pid))
    finally:
        proc.stop(timeout=2)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _eventually(check: Callable[[], bool], attempts: int = 100) -> bool:
    """Whether ``check`` holds within ``attempts`` reads 10 ms apart."""
    for _ in range(attempts):
        if check():
            return True
        time.sleep(0.01)
    return False
