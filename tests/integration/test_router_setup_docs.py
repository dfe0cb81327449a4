"""docs/router-setup.md's FRR, BIRD and GoBGP configurations, loaded as printed into the
real routers.

The router runs in a network namespace at 192.0.2.1 with the block cut from the page,
unchanged; two ExaBGP speakers in a node namespace at 192.0.2.11 and 192.0.2.12 (AS 64513,
MD5 password s3cret, a hold time of 90 s offered) announce 198.51.100.10/32, inside the
pools, and 203.0.113.10/32, outside them. What the router itself reports must show every
promise the page makes: both sessions Established, the router's 30 s hold time, two paths
(ECMP) to the pool prefix and none to the other.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbed import netns
from testbed.binaries import ROOT, find
from testbed.exabgp import ExaBgpSpeaker, Peer
from testbed.procs import Proc, wait_for

pytestmark = pytest.mark.integration

PAGE = ROOT / "docs" / "router-setup.md"
ROUTER, NODES = "192.0.2.1", ("192.0.2.11", "192.0.2.12")
IN_POOL, OUTSIDE = "198.51.100.10/32", "203.0.113.10/32"
FENCES = {"frr": "frr", "bird": "bird", "gobgp": "toml"}


def config_block(kind: str) -> str:
    blocks = re.findall(rf"^```{FENCES[kind]}\n(.*?)^```", PAGE.read_text(), re.S | re.M)
    assert len(blocks) == 1, f"{PAGE.name} should have one ```{FENCES[kind]} block"
    return str(blocks[0])


@dataclass
class Namespaces:
    router: str
    node: str


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    tag = uuid.uuid4().hex[:6]
    ns = Namespaces(f"exdoc-{tag}-r", f"exdoc-{tag}-n")
    try:
        netns.add(ns.router)
        netns.add(ns.node)
        netns.link((ns.node, "eth0", f"{NODES[0]}/24"), (ns.router, "eth0", f"{ROUTER}/24"))
        netns.ip("-n", ns.node, "addr", "add", f"{NODES[1]}/24", "dev", "eth0")
        yield ns
    finally:
        netns.delete(ns.node)
        netns.delete(ns.router)


@dataclass
class Observed:
    """What the router says about the nodes' sessions and the two prefixes."""

    established: set[str]
    hold_times: dict[str, float]
    in_pool_next_hops: set[str]
    outside_present: bool


class RouterUnderTest:
    def __init__(self, ns: str, workdir: Path, config: str) -> None:
        self.ns, self.workdir = ns, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.proc: Proc | None = None

    def run(self, *argv: str) -> str:
        return subprocess.run(
            [*netns.enter(self.ns), *argv], capture_output=True, text=True, timeout=30, check=True
        ).stdout

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def tail(self) -> str:
        return self.proc.tail() if self.proc else ""


class Frr(RouterUnderTest):
    def start(self) -> None:
        conf = self.workdir / "bgpd.conf"
        conf.write_text(self.config)
        # -Z: bgpd alone (the RIB is what the test reads); -S: as root, in the namespace
        argv = ["-Z", "-S", "-f", str(conf), "-i", str(self.workdir / "bgpd.pid")]
        argv += ["--vty_socket", str(self.workdir), "-P", "0", "--log", "stdout"]
        self.proc = Proc("bgpd", [*netns.enter(self.ns), find("bgpd"), *argv], self.workdir / "log")

    def vtysh(self, command: str) -> Any:
        vtysh = [find("vtysh"), "--vty_socket", str(self.workdir), "-d", "bgpd", "-c", command]
        return json.loads(self.run(*vtysh) or "{}")

    def observe(self) -> Observed:
        neighbors = self.vtysh("show bgp neighbors json")
        up = {a for a, n in neighbors.items() if n.get("bgpState") == "Established"}
        holds = {a: neighbors[a]["bgpTimerHoldTimeMsecs"] / 1000 for a in up}
        paths = self.vtysh(f"show bgp ipv4 unicast {IN_POOL} json").get("paths", [])
        hops = {h["ip"] for p in paths for h in p.get("nexthops", [])[:1]}
        outside = bool(self.vtysh(f"show bgp ipv4 unicast {OUTSIDE} json").get("paths"))
        return Observed(up, holds, hops, outside)


class Bird(RouterUnderTest):
    def start(self) -> None:
        conf = self.workdir / "bird.conf"
        conf.write_text(self.config)
        self.socket = str(self.workdir / "bird.ctl")
        argv = ["-f", "-c", str(conf), "-s", self.socket, "-P", str(self.workdir / "bird.pid")]
        self.proc = Proc("bird", [*netns.enter(self.ns), find("bird"), *argv], self.workdir / "log")

    def birdc(self, *command: str) -> str:
        return self.run(find("birdc"), "-s", self.socket, *command)

    def observe(self) -> Observed:
        up, holds = set(), {}
        for block in self.birdc("show", "protocols", "all").split("\n\n"):
            address = re.search(r"Neighbor address:\s+(\S+)", block)
            if address and re.search(r"BGP state:\s+Established", block):
                up.add(address.group(1))
                hold = re.search(r"Hold timer:\s+[\d.]+/(\d+)", block)
                holds[address.group(1)] = float(hold.group(1)) if hold else 0.0
        routes = self.birdc("show", "route", IN_POOL, "all")
        hops = set(re.findall(r"BGP\.next_hop:\s+(\S+)", routes))
        outside = OUTSIDE in self.birdc("show", "route")
        return Observed(up, holds, hops, outside)


class GoBgp(RouterUnderTest):
    def start(self) -> None:
        conf = self.workdir / "gobgpd.toml"
        conf.write_text(self.config)
        argv = ["-f", str(conf), "--api-hosts=127.0.0.1:50051", "--pprof-disable"]
        self.proc = Proc(
            "gobgpd", [*netns.enter(self.ns), find("gobgpd"), *argv], self.workdir / "log"
        )

    def gobgp(self, *args: str) -> Any:
        out = self.run(find("gobgp"), "-u", "127.0.0.1", "-p", "50051", "-j", *args)
        return json.loads(out) if out.strip() else None

    def observe(self) -> Observed:
        up, holds = set(), {}
        for n in self.gobgp("neighbor") or []:
            state = n.get("state", {})
            if state.get("session_state") == 6:  # established
                up.add(state["neighbor_address"])
                hold = n.get("timers", {}).get("state", {}).get("negotiated_hold_time", 0)
                holds[state["neighbor_address"]] = float(hold)
        rib = self.gobgp("global", "rib", "-a", "ipv4") or {}
        hops = {
            a["nexthop"] for p in rib.get(IN_POOL, []) for a in p["attrs"] if a.get("type") == 3
        }
        return Observed(up, holds, hops, OUTSIDE in rib)


KINDS: dict[str, Callable[[str, Path, str], RouterUnderTest]] = {
    "frr": Frr,
    "bird": Bird,
    "gobgp": GoBgp,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_documented_config_peers_filters_and_balances(
    kind: str, namespaces: Namespaces, tmp_path: Path
) -> None:
    router = KINDS[kind](namespaces.router, tmp_path / kind, config_block(kind))
    speakers = [
        ExaBgpSpeaker(
            node,
            64513,
            [Peer(ROUTER, 179, 64512, "s3cret")],
            tmp_path / f"exabgp-{node}",
            hold_time=90,
            argv_prefix=netns.enter(namespaces.node),
        )
        for node in NODES
    ]
    seen = Observed(set(), {}, set(), False)

    def settled() -> bool:
        nonlocal seen
        seen = router.observe()
        return seen.established == set(NODES) and seen.in_pool_next_hops == set(NODES)

    try:
        router.start()
        for speaker in speakers:
            speaker.start()
            speaker.command(f"announce route {IN_POOL} next-hop self")
            speaker.command(f"announce route {OUTSIDE} next-hop self")
        wait_for(
            f"{kind}: both nodes established, ECMP to {IN_POOL}",
            settled,
            45,
            interval=0.5,
            on_timeout=lambda: f"{seen}\n{router.tail()}",
        )
        assert seen.hold_times == {node: 30.0 for node in NODES}
        assert not seen.outside_present, f"{OUTSIDE} passed the import filter"
    finally:
        for speaker in speakers:
            speaker.stop()
        router.stop()
