"""ExaBGP 5 announces a /32 with a community to each real router; the router's RIB shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.exabgp import ExaBgpSpeaker, Peer
from testbed.routers import Neighbor
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

PREFIX = "198.51.100.10/32"
NEXT_HOP = "192.0.2.10"


@pytest.mark.parametrize(
    ("kind", "router_ip", "speaker_ip"),
    [
        ("gobgp", "127.0.10.1", "127.0.10.2"),
        ("bird", "127.0.11.1", "127.0.11.2"),
        ("frr", "127.0.12.1", "127.0.12.2"),
    ],
)
def test_exabgp_route_reaches_router_rib_and_is_withdrawn(
    kind: str, router_ip: str, speaker_ip: str, router: RouterFactory, tmp_path: Path
) -> None:
    r = router(kind, router_ip, 64512, [Neighbor(speaker_ip, 64513, password="smoke-md5")])
    speaker = ExaBgpSpeaker(
        speaker_ip,
        64513,
        [Peer(router_ip, r.port, 64512, password="smoke-md5")],
        tmp_path / "exabgp",
    )
    speaker.start()
    try:
        session = r.wait_session(speaker_ip)
        assert session.established
        speaker.command(
            f"announce route {PREFIX} next-hop {NEXT_HOP} community [65000:100] "
            "large-community [64512:7:9]"
        )
        paths = r.wait_next_hops(PREFIX, {NEXT_HOP})
        (path,) = paths
        assert path.communities == ("65000:100",)
        assert path.large_communities == ("64512:7:9",)
        assert path.as_path == (64513,)
        assert path.origin == "igp"

        speaker.command(f"withdraw route {PREFIX} next-hop {NEXT_HOP}")
        r.wait_absent(PREFIX)
        assert r.sessions()[speaker_ip].established  # a withdraw is not a session reset
    finally:
        speaker.stop()
