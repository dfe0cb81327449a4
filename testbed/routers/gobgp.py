"""GoBGP (gobgpd) as a test router, read through `gobgp -j`."""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

from testbed.binaries import find
from testbed.procs import Proc, free_port, wait_for

from .base import RibPath, Router, Session

# gobgp's session_state enum (api.PeerState_SessionState)
_STATES = {
    0: "unknown",
    1: "idle",
    2: "connect",
    3: "active",
    4: "opensent",
    5: "openconfirm",
    6: "established",
}
_ORIGINS = {0: "igp", 1: "egp", 2: "incomplete"}
# logrus quotes a value only when it has spaces: Reason="notification-received code 6(cease)
# ..." but Reason=read-failed.
_PEER_DOWN = re.compile(
    r'msg="Peer Down" Key=(?P<key>\S+) Reason=(?:"(?P<quoted>[^"]*)"|(?P<bare>\S+))'
)


class GoBgp(Router):
    kind = "gobgp"
    grpc_port = 0

    def start(self) -> None:
        if not self.grpc_port:
            self.grpc_port = free_port(self.address)
        conf = self.workdir / "gobgpd.toml"
        lines = [
            "[global.config]",
            f"  as = {self.asn}",
            f'  router-id = "{self.router_id}"',
            f"  port = {self.port}",
            f'  local-address-list = ["{self.address}"]',
        ]
        for n in self.neighbors:
            lines += [
                "[[neighbors]]",
                "  [neighbors.config]",
                f'    neighbor-address = "{n.address}"',
                f"    peer-as = {n.asn}",
            ]
            if n.password:
                lines.append(f'    auth-password = "{n.password}"')
            lines += [
                "  [neighbors.transport.config]",
                "    passive-mode = true",
                f'    local-address = "{self.address}"',
            ]
            if n.graceful_restart:
                lines += [
                    "  [neighbors.graceful-restart.config]",
                    "    enabled = true",
                    "  [[neighbors.afi-safis]]",
                    "    [neighbors.afi-safis.config]",
                    '      afi-safi-name = "ipv4-unicast"',
                    "    [neighbors.afi-safis.mp-graceful-restart.config]",
                    "      enabled = true",
                ]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = Proc(
            "gobgpd",
            [
                find("gobgpd"),
                "-f",
                str(conf),
                f"--api-hosts={self.address}:{self.grpc_port}",
                "--pprof-disable",
                "-p",
            ],
            self.workdir / "gobgpd.log",
        )
        wait_for(
            "gobgpd API", lambda: self._gobgp("global") is not None, 20, on_timeout=self.log_tail
        )

    def _gobgp(self, *args: str) -> Any:
        out = self._cli("-j", *args)
        return json.loads(out) if out.strip() else None

    def _cli(self, *args: str) -> str:
        return subprocess.run(
            [find("gobgp"), "-u", self.address, "-p", str(self.grpc_port), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def shutdown_neighbor(self, peer: str, message: str) -> None:
        # `disable --reason` sends no communication (GoBGP 3); `shutdown --reason` does.
        self._cli("neighbor", peer, "shutdown", "--reason", message)

    def enable_neighbor(self, peer: str) -> None:
        self._cli("neighbor", peer, "enable")

    def last_errors(self) -> dict[str, str]:
        """peer -> GoBGP's reason for the last time that session went down (from its log).

        `gobgp neighbor -j` has notification counters but not their codes; the log has
        the decoded reason, e.g. "notification-received code 6(cease) subcode
        2(administrative shutdown)".
        """
        out: dict[str, str] = {}
        if self.proc is None:
            return out
        try:
            text = self.proc.log.read_text(errors="replace")
        except OSError:
            return out
        for m in _PEER_DOWN.finditer(text):
            out[m.group("key")] = m.group("quoted") or m.group("bare")
        return out

    def sessions(self) -> dict[str, Session]:
        out: dict[str, Session] = {}
        errors = self.last_errors()
        now = time.time()
        for n in self._gobgp("neighbor") or []:
            st = n.get("state", {})
            peer = _peer(n)
            state = _STATES.get(int(st.get("session_state", 0)), "unknown")
            up = n.get("timers", {}).get("state", {}).get("uptime", {}).get("seconds")
            uptime = now - float(up) if state == "established" and up else None
            out[peer] = Session(peer, state, uptime, errors.get(peer))
        return out

    def rib(self) -> dict[str, list[RibPath]]:
        table = self._gobgp("global", "rib", "-a", "ipv4") or {}
        return {prefix: [_path(prefix, p) for p in paths] for prefix, paths in table.items()}

    def updates_received(self, peer: str) -> int:
        n = self._gobgp("neighbor", peer) or {}
        return int(n.get("state", {}).get("messages", {}).get("received", {}).get("update", 0))

    def accepted(self) -> dict[str, int]:
        """Peer address -> IPv4 unicast paths GoBGP accepted from it, by its own counters:
        one small answer where the RIB of 30,000 paths takes seconds to list and parse."""
        out: dict[str, int] = {}
        for n in self._gobgp("neighbor") or []:
            out[_peer(n)] = sum(
                int(a.get("state", {}).get("accepted", 0))
                for a in n.get("afi_safis") or []
                if a.get("state", {}).get("family", {}).get("afi", 1) == 1
            )
        return out

    def path_count(self, family: str = "ipv4") -> int:
        """Paths in GoBGP's global RIB of ``family``, as GoBGP itself counts them."""
        return int((self._gobgp("global", "rib", "summary", "-a", family) or {}).get("num_path", 0))

    def uptime_since(self, peer: str) -> float | None:
        """The epoch second the session came up: stable across polls, for reset checks."""
        for n in self._gobgp("neighbor") or []:
            if n.get("state", {}).get("neighbor_address") == peer:
                up = n.get("timers", {}).get("state", {}).get("uptime", {}).get("seconds")
                return float(up) if up else None
        return None


def _peer(n: dict[str, Any]) -> str:
    """A `gobgp neighbor -j` entry's address: its state has it once the peer was seen."""
    return str(n.get("state", {}).get("neighbor_address") or n["conf"]["neighbor_address"])


def _path(prefix: str, p: dict[str, Any]) -> RibPath:
    nh, as_path, origin = "", [], ""
    comms: list[str] = []
    large: list[str] = []
    lp = med = None
    for a in p.get("attrs", []):
        t = a.get("type")
        if t == 1:
            origin = _ORIGINS.get(int(a.get("value", 0)), "?")
        elif t == 2:
            for seg in a.get("as_paths", []):
                as_path += seg.get("asns", [])
        elif t == 3:
            nh = a.get("nexthop", "")
        elif t == 4:
            med = int(a.get("metric", 0))
        elif t == 5:
            lp = int(a.get("value", 0))
        elif t == 8:
            comms += [f"{c >> 16}:{c & 0xFFFF}" for c in a.get("communities", [])]
        elif t == 32:
            large += [f"{v['ASN']}:{v['LocalData1']}:{v['LocalData2']}" for v in a.get("value", [])]
    return RibPath(
        prefix=prefix,
        next_hop=nh,
        as_path=tuple(as_path),
        origin=origin,
        communities=tuple(comms),
        large_communities=tuple(large),
        local_pref=lp,
        med=med,
        peer=p.get("neighbor-ip"),
    )
