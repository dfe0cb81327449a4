"""A Peer's password reaches no log line: not its repr, not a traceback's local variables."""

from __future__ import annotations

import pytest
import structlog

from exalb.bgppeer import Peer
from exalb.observability import logging as obslog

PASSWORD = "md5-Zq7-wrX!kp4"


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_logged_failure_shows_no_password(
    fmt: obslog.LogFormat, capsys: pytest.CaptureFixture[str]
) -> None:
    obslog.configure("debug", fmt)
    try:
        peer = Peer("tor", 64513, 64512, "192.0.2.1", password=PASSWORD)
        password = peer.password  # a local a traceback renderer with locals would print
        try:
            raise ValueError(f"bad peer {peer!r}")
        except ValueError:
            structlog.get_logger("test").exception("reconcile failed", peer=peer.name)
        err = capsys.readouterr().err
        assert "reconcile failed" in err and "Traceback" in err and "bad peer" in err
        assert password is not None and password not in err
    finally:
        structlog.reset_defaults()
