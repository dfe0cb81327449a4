"""FRR's bgpd as a test router: standalone (-Z, no zebra), read through vtysh JSON."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from testbed.binaries import find
from testbed.procs import Proc, wait_for

from .base import RibPath, Router, Session


class Frr(Router):
    kind = "frr"

    def start(self) -> None:
        conf = self.workdir / "bgpd.conf"
        lines = [
            "frr defaults datacenter",
            f"hostname frr-{self.address}",
            "log stdout informational",
            f"router bgp {self.asn}",
            f" bgp router-id {self.router_id}",
            " no bgp ebgp-requires-policy",
            " no bgp network import-check",
            " bgp bestpath as-path multipath-relax",
        ]
        for n in self.neighbors:
            lines += [f" neighbor {n.address} remote-as {n.asn}", f" neighbor {n.address} passive"]
            if n.password:
                lines.append(f" neighbor {n.address} password {n.password}")
        lines += [
            " address-family ipv4 unicast",
            "  maximum-paths 64",
            "  maximum-paths ibgp 64",
            " exit-address-family",
            # IPv6 routes over the IPv4 sessions when the BGPPeer asks (MP-BGP).
            " address-family ipv6 unicast",
            *(f"  neighbor {n.address} activate" for n in self.neighbors),
            "  maximum-paths 64",
            " exit-address-family",
        ]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = Proc(
            "bgpd",
            [
                find("bgpd"),
                "-Z",
                "-S",
                "-n",
                "-l",
                self.address,
                "-p",
                str(self.port),
                "-f",
                str(conf),
                "-i",
                str(self.workdir / "bgpd.pid"),
                "--vty_socket",
                str(self.workdir),
                "-P",
                "0",
                "--log",
                "stdout",
            ],
            self.workdir / "bgpd.log",
        )
        wait_for(
            "FRR bgpd vty",
            lambda: self._vtysh("show bgp summary json") is not None,
            20,
            on_timeout=self.log_tail,
        )

    def _vtysh(self, command: str) -> Any:
        out = subprocess.run(
            [find("vtysh"), "--vty_socket", str(self.workdir), "-d", "bgpd", "-c", command],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        return json.loads(out) if out.strip() else None

    def _configure(self, *lines: str) -> None:
        argv = [find("vtysh"), "--vty_socket", str(self.workdir), "-d", "bgpd", "-c", "conf t"]
        argv += ["-c", f"router bgp {self.asn}"]
        for line in lines:
            argv += ["-c", line]
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)

    def shutdown_neighbor(self, peer: str, message: str) -> None:
        self._configure(f"neighbor {peer} shutdown message {message}")

    def enable_neighbor(self, peer: str) -> None:
        self._configure(f"no neighbor {peer} shutdown")

    def sessions(self) -> dict[str, Session]:
        out: dict[str, Session] = {}
        for peer, n in (self._vtysh("show bgp neighbors json") or {}).items():
            state = str(n.get("bgpState", "unknown")).lower()
            up = n.get("bgpTimerUpMsec")
            err = n.get("lastNotificationReason") or n.get("lastResetDueTo")
            if n.get("lastShutdownDescription"):
                err = f"{err}: {n['lastShutdownDescription']}"
            out[peer] = Session(
                peer, state, float(up) / 1000 if state == "established" and up else None, err
            )
        return out

    def neighbor_raw(self, peer: str) -> dict[str, Any]:
        """FRR's full neighbor JSON, for assertions on NOTIFICATION details."""
        data = self._vtysh(f"show bgp neighbors {peer} json") or {}
        return dict(data.get(peer, {}))

    def updates_received(self, peer: str) -> int:
        return int(self.neighbor_raw(peer).get("messageStats", {}).get("updatesRecv", 0))

    def accepted_ipv6(self, peer: str) -> int:
        """IPv6 unicast prefixes FRR accepted from ``peer``, by its own counter."""
        family = self.neighbor_raw(peer).get("addressFamilyInfo", {}).get("ipv6Unicast", {})
        return int(family.get("acceptedPrefixCounter", 0))

    def uptime_since(self, peer: str) -> float | None:
        n = self.neighbor_raw(peer)
        epoch = n.get("bgpTimerUpEstablishedEpoch")
        return float(epoch) if epoch and n.get("bgpState") == "Established" else None

    def rib(self) -> dict[str, list[RibPath]]:
        table = (self._vtysh("show bgp ipv4 unicast json") or {}).get("routes", {})
        return {prefix: self.paths(prefix) for prefix in table}

    def last_updates(self, prefix: str) -> tuple[int, ...]:
        """When each path to ``prefix`` last changed (epoch seconds).

        A withdraw and re-announce of that prefix moves it; End-of-RIB markers and other
        prefixes, which FRR's UPDATE counter also counts, do not.
        """
        detail = self._vtysh(f"show bgp {_afi(prefix)} unicast {prefix} json") or {}
        stamps = (int((p.get("lastUpdate") or {}).get("epoch", 0)) for p in detail.get("paths", []))
        return tuple(sorted(stamps))

    def paths(self, prefix: str) -> list[RibPath]:
        """One prefix's paths: a single vtysh call, cheap enough to poll every 100 ms."""
        detail = self._vtysh(f"show bgp {_afi(prefix)} unicast {prefix} json") or {}
        return [_path(prefix, p) for p in detail.get("paths", [])]


def _afi(prefix: str) -> str:
    return "ipv6" if ":" in prefix else "ipv4"


# FRR names well-known communities in its JSON; the other routers show their numbers.
_WELL_KNOWN = {
    "gracefulShutdown": "65535:0",
    "noExport": "65535:65281",
    "noAdvertise": "65535:65282",
    "localAs": "65535:65283",
}


def _path(prefix: str, p: dict[str, Any]) -> RibPath:
    hops = p.get("nexthops", [])
    as_path: list[int] = []
    for seg in p.get("aspath", {}).get("segments", []):
        as_path += [int(a) for a in seg.get("list", [])]
    return RibPath(
        prefix=prefix,
        next_hop=hops[0]["ip"] if hops else "",
        as_path=tuple(as_path),
        origin=str(p.get("origin", "")).lower(),
        communities=tuple(_WELL_KNOWN.get(c, c) for c in p.get("community", {}).get("list", [])),
        large_communities=tuple(p.get("largeCommunity", {}).get("list", [])),
        local_pref=p.get("locPrf") if "locPrf" in p else p.get("localpref"),
        med=p.get("metric") if "metric" in p else p.get("med"),
        peer=p.get("peer", {}).get("peerId"),
        extended_community=str(p.get("extendedCommunity", {}).get("string", "")),
        selected=bool(p.get("bestpath", {}).get("overall") or p.get("multipath")),
    )
