"""Each log record reaches stderr in one write, so another writer cannot split its line.

The announcer's ExaBGP writes to the same stderr (both are the container's log). When a
record and its newline were written apart, an ExaBGP line landed between them and the
JSON line was no longer JSON for a log shipper (seen in the announcer benchmark's log).
"""

from __future__ import annotations

import json
import sys

import pytest
import structlog

from exalb.observability.logging import configure


class Writes:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_record_is_one_whole_line_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = Writes()
    monkeypatch.setattr(sys, "stderr", stderr)  # in the test: pytest swaps it after setup
    try:
        configure("info", "json")
        structlog.get_logger("t").info("session state", peer="tor", state="up")
    finally:
        structlog.reset_defaults()
    (line,) = stderr.calls
    assert line.endswith("\n") and line.count("\n") == 1
    record = json.loads(line)
    assert record["event"] == "session state" and record["peer"] == "tor"
