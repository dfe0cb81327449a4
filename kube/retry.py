"""Retry policy for API writes and reads: transient failures only, with hard limits.

A 4xx other than 429 is a verdict about our request, so it is returned at
once; 5xx, 429 and connection errors are retried with capped exponential
backoff and give up after ``attempts`` so a caller can surface the error
(an Event, a metric) instead of hanging.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import urllib3
from kubernetes.client import ApiException
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in (429, 500, 502, 503, 504) or exc.status == 0
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
    if isinstance(exc, ApiException):
        try:
            return f"HTTP {exc.status}: {json.loads(exc.body or '')['message']}"
        except (ValueError, KeyError, TypeError):
            return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"[:300]
