"""Retry policy for API writes and reads: transient failures only, with hard limits.

A 4xx other than 429 is a verdict about our request, so it is returned at
once; 5xx, 429 and connection errors are retried with capped exponential
backoff and give up after ``attempts`` so a caller can surface the error
(an Event, a metric) instead of hanging.
"""

from __future__ import annotations

import sys
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


def api_error(exc: BaseException) -> ApiError | None:
    """``exc`` as an :class:`ApiError` if it is an API answer from either client, else None.

    The allocator uses the kubernetes client, the announcer ``kube.rest``; this module
    serves both without importing ``kubernetes`` (43 MiB the announcer must not pay). An
    ``ApiException`` can only exist once its module has been imported, so looking the
    class up in ``sys.modules`` is exact, not a guess.
    """
    if isinstance(exc, ApiError):
        return exc
    module = sys.modules.get("kubernetes.client.exceptions")
    api_exception = getattr(module, "ApiException", None)
    if api_exception is not None and isinstance(exc, api_exception):
        body = exc.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        return ApiError(int(exc.status or 0), str(exc.reason or ""), str(body or ""))
    return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an API error from either client; None for anything else."""
    err = api_error(exc)
    return err.status if err is not None else None


def transient(exc: BaseException) -> bool:
    status = status_of(exc)
    if status is not None:
        return status in (0, 429, 500, 502, 503, 504)
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def call(fn: Callable[[], T], attempts: int = 5, max_seconds: float = 10.0) -> T:
    """Run ``fn`` with the transient-error retry policy."""
    for attempt in Retrying(
        retry=retry_if_exception(transient),
        wait=wait_exponential(multiplier=0.05, max=2.0),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        reraise=True,
    ):
        with attempt:
            return fn()
    raise AssertionError("unreachable")  # pragma: no cover


def describe(exc: BaseException) -> str:
    """A one-line account of an API failure, with the server's own message when it sent one."""
    err = api_error(exc)
    if err is not None:
        return str(err)
    return f"{type(exc).__name__}: {exc}"[:300]
