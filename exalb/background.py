"""The one background loop: a named thread that runs a step when woken or when it is due.

Every periodic writer and checker of both processes (status writers, the data path
prober, the EndpointSlice scope) runs on it, so waking, pacing, stopping and surviving
a failed step work the same way everywhere. A wake that arrives while a step runs is
kept, so the change behind it is looked at by the next step, never lost; ``min_gap``
bounds how often a burst of wakes can run the step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from exalb.kube.retry import describe

# What a step returns: seconds until it is due again, or None for the loop's ``every``.
Step = Callable[[], float | None]


class Loop:
    def __init__(
        self,
        name: str,
        step: Step,
        every: float | None,
        log: Any,
        *,
        min_gap: float = 0.0,
        after_error: float = 1.0,
    ) -> None:
        """``every`` None: the step runs only when woken. ``log`` is a bound structlog logger."""
        self.name = name
        self._step = step
        self._every = every
        self._min_gap = min_gap
        self._after_error = after_error
        self._log = log
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Run the step soon (after ``min_gap``), not when it is next due."""
        self._wake.set()

    def stopping(self) -> bool:
        """For a long step to give up early."""
        return self._stop.is_set()

    def stop(self, wait: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                due = self._step()
            except Exception as exc:  # one failed step must not end the loop
                self._log.warning(f"{self.name} failed; trying again", error=describe(exc))
                due = self._after_error
            if due is None:
                due = self._every
            if self._stop.wait(self._min_gap):
                return
            self._wake.wait(None if due is None else max(0.0, due - self._min_gap))
