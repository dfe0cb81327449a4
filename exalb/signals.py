"""SIGTERM and SIGINT for a process's main thread to wait on, received without I/O.

CPython runs a signal handler in the main thread between two bytecodes, possibly in
the middle of that thread's own write to a buffered stream. A handler that logs then
writes to the same stream re-entrantly, and CPython raises ``RuntimeError: reentrant
call`` in the main thread, wherever it was. A second SIGTERM arriving while the
announcer logged its shutdown once aborted that shutdown half-way: no Cease, and the
process lived on until its SIGKILL. ``threading.Event.set`` is no safe alternative: it
takes a lock that the interrupted main thread may hold (inside ``Event.wait``).

So the handler only records the signal and writes a byte to a pipe (a system call on a
file descriptor, no Python-level lock); the main thread blocks reading the pipe, and
logs once it is awake.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable


class StopSignals:
    """Installs handlers for ``signals``; :meth:`wait` returns the first one's name."""

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)):
        self.received: list[str] = []
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)  # a storm of signals must never block a handler
        for sig in signals:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signal.Signals(signum).name)
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:  # the pipe is full: the waiter is awake already
            pass

    def wait(self) -> str:
        """Block until a signal arrives (or has arrived); the first signal's name."""
        while not self.received:
            os.read(self._read, 1)
        return self.received[0]
