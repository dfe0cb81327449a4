"""The announcer and ExaBGP need no capability: proved by running them as the chart does.

charts/exalb/values.yaml drops every capability, forbids privilege escalation and makes
the root file system read-only, with one tmpfs for the run directory. These tests run the
real announcer (and so ExaBGP) exactly so (testbed.confine) and check at the router.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testbed import confine
from testbed.lab import Lab, children
from testbed.routers import Neighbor
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

IP = "198.51.100.10"
PREFIX = f"{IP}/32"

# ExaBGP's own socket set-up for a session with a password and GTSM/multihop, run as the
# chart's user with no capability; the routers in the test bed do not speak GTSM, so this
# part is checked on the socket rather than on a session.
SOCKET_OPTIONS = """
import socket
from exabgp.protocol.family import AFI
from exabgp.reactor.network.tcp import bind, md5, min_ttl, ttl
router = socket.socket()  # the other end, with the same password and TTL 255
router.bind(("127.0.0.1", 0))
md5(router, "127.0.0.2", 0, "s3cret", False)
ttl(router, "127.0.0.2", 255)
router.listen(1)
io = socket.socket()
io.settimeout(10)
bind(io, "127.0.0.2", AFI.ipv4)              # the session's source address
md5(io, "127.0.0.1", 0, "s3cret", False)     # TCP_MD5SIG
ttl(io, "127.0.0.1", 255)                    # IP_TTL (ebgpMultiHop, ttlSecurity)
min_ttl(io, "127.0.0.1", 255)                # IP_MINTTL (ttlSecurity)
io.connect(router.getsockname())            # signed, TTL-checked handshake
print("CapEff", open("/proc/self/status").read().split("CapEff:")[1].split()[0])
"""


def test_exabgp_socket_options_need_no_capability() -> None:
    home = confine.private_dir()
    try:
        argv = confine.command([sys.executable, "-I", "-c", SOCKET_OPTIONS], home)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    finally:
        home.rmdir()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["CapEff", "0000000000000000"]


def test_md5_session_and_routes_as_the_chart_runs_the_announcer(
    lab: Lab, router: RouterFactory
) -> None:
    lab.confined = True
    r = router("frr", lab.router_ip, 64512, [Neighbor(lab.source(1), lab.asn, "s3cret")])
    lab.add_secret("tor-md5", "s3cret")
    lab.add_peer("tor", r, passwordSecret={"name": "tor-md5"})
    lab.add_node(1)
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    lab.wait_explained("web", {1: ""})  # its status reaches the API from inside the confinement

    proc = lab.node(1).proc
    assert proc is not None
    exabgp = children(proc.pid)
    assert exabgp, "the announcer runs its ExaBGP as a child"
    for pid in (proc.pid, *exabgp):
        status = process_status(pid)
        assert status["Uid"][0] == str(confine.UID)
        assert status["CapEff"] == ["0000000000000000"]
        assert status["CapBnd"] == ["0000000000000000"]
        assert status["NoNewPrivs"] == ["1"]
    # SIGTERM still withdraws first, with nothing but the tmpfs writable
    assert lab.stop_announcer(1) == 0
    r.wait_absent(PREFIX)


def process_status(pid: int) -> dict[str, list[str]]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.split() for k, _, v in (line.partition(":") for line in lines)}
