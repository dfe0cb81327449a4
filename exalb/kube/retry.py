"""Retry policy for API writes and reads: transient failures only, with hard limits.

A 4xx other than 429 is a verdict about our request, so it is returned at
once; 5xx, 429 and connection errors are retried with capped exponential
backoff and give up after ``attempts`` so a caller can surface the error
(an Event, a metric) instead of hanging.

:func:`fenced` is the same policy for a leader's writes: before every attempt
it asks the lease how long it is still valid, sends nothing once it is not,
and gives the attempt no longer than that to complete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import urllib3
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from .rest import ApiError

T = TypeVar("T")

# The client's own read timeout for one write; the lease's remaining validity caps it.
WRITE_TIMEOUT = 10.0


class NotLeader(RuntimeError):
    """The lease is not (or no longer) valid: the write was not sent."""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an API error; None for anything else."""
    return exc.status if isinstance(exc, ApiError) else None


def transient(exc: BaseException) -> bool:
    status = status_of(exc)
    if status is not None:
        return status in (0, 429, 500, 502, 503, 504)
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def _retrying(attempts: int, max_seconds: float) -> Retrying:
    return Retrying(
        retry=retry_if_exception(transient),
        wait=wait_exponential(multiplier=0.05, max=2.0),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        reraise=True,
    )


def call(fn: Callable[[], T], attempts: int = 5, max_seconds: float = 10.0) -> T:
    """Run ``fn`` with the transient-error retry policy."""
    for attempt in _retrying(attempts, max_seconds):
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover


def fenced(
    send: Callable[[float], T],
    validity: Callable[[], float],
    attempts: int = 4,
    max_seconds: float = 5.0,
    timeout: float = WRITE_TIMEOUT,
) -> T:
    """Run ``send(timeout)`` as :func:`call` does, but only while the lease is valid.

    ``validity()`` is how many seconds the lease still covers (0 when not leading). It
    is asked before every attempt, not once per write: a retry after the lease ran out
    would be a write by a process that may no longer lead. Each attempt's timeout is
    the smaller of ``timeout`` and that validity, so no request of ours can still be
    in flight when a standby may take over. ``send`` must make one HTTP attempt only
    (``retry_connection=False``), or its own retries would escape the check.
    """

    def attempt_once() -> T:
        left = validity()
        if left <= 0:
            raise NotLeader("the lease is not held (or ran out): write not sent")
        return send(min(timeout, left))

    return call(attempt_once, attempts, max_seconds)


def describe(exc: BaseException) -> str:
    """A one-line account of an API failure, with the server's own message when it sent one."""
    if isinstance(exc, ApiError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:300]
