"""StopSignals: a signal that interrupts the main thread's blocked log write is harmless.

The child below logs to stderr in its main thread while another thread sends it
SIGTERM 300 times. Its stderr is a pipe nobody reads for a second, so the writes
block in the kernel and the signals interrupt them: exactly when a handler that
logs re-enters the stream (an announcer whose log pipe is full at shutdown).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import logging, os, signal, sys, threading, time
sys.path.insert(0, {root!r})
from exalb.signals import StopSignals

log = logging.getLogger()
logging.basicConfig(stream=sys.stderr)
if sys.argv[1] == "logging-handler":
    signal.signal(signal.SIGTERM, lambda signum, _: log.error("signal %s", signum))
else:
    stop = StopSignals()

def pelt():
    for _ in range(300):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.001)

sender = threading.Thread(target=pelt)
sender.start()
try:
    while sender.is_alive():
        log.error("x" * 300)
except RuntimeError as exc:
    print("RuntimeError:", exc, flush=True)
    sys.exit(1)
sender.join()
print(stop.wait(), len(stop.received) > 0, flush=True)
"""


def run_child(mode: str) -> tuple[int, str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # stderr unread: the child's writes block and the signals land in them
    out, _ = child.communicate(timeout=60)
    return child.returncode, out.decode()


def test_a_handler_that_logs_breaks_the_interrupted_write() -> None:
    """Why StopSignals exists: the naive handler raises in the main thread.

    Which RuntimeError depends on timing: a re-entrant write to the stream, or handlers
    nested in blocked writes of handlers until the recursion limit.
    """
    code, out = run_child("logging-handler")
    assert code == 1 and out.startswith("RuntimeError:"), out


def test_stop_signals_survive_a_storm_during_blocked_writes() -> None:
    code, out = run_child("stop-signals")
    assert code == 0, out
    assert out.split() == ["SIGTERM", "True"]
