"""FRR as a forwarding router in a network namespace: zebra + bgpd, routes in that kernel.

Unlike :class:`~testbed.routers.frr.Frr` (bgpd alone on a loopback address),
this router installs what it learns into its namespace's kernel, so traffic
really follows the routes. It accepts sessions from any address of
``listen_range`` (the nodes' links) with any AS but its own, so nodes can join
without a configuration change; with ``listen_range_v6`` also from IPv6
addresses, and every neighbor gets both address families (IPv6 routes over
an IPv4 session and the reverse, MP-BGP). Each daemon gets its own config file owned by
the ``frr`` user, ``-N`` names the instance and every socket lives in workdir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field

from testbed.binaries import find
from testbed.netns import enter, run
from testbed.procs import Proc, wait_for

from .frr import Frr


@dataclass
class FrrNamespace(Frr):
    netns: str = ""
    listen_range: str = ""
    listen_range_v6: str = ""
    zebra: Proc | None = field(default=None, init=False)

    kind = "frr-netns"

    def start(self) -> None:
        shutil.chown(self.workdir, "frr", "frr")
        self.zebra = self._daemon("zebra", ["hostname exalb-router"])
        self.proc = self._daemon(
            "bgpd",
            [
                "frr defaults datacenter",
                "hostname exalb-router",
                f"router bgp {self.asn}",
                f" bgp router-id {self.router_id}",
                " no bgp ebgp-requires-policy",
                " bgp bestpath as-path multipath-relax",
                " neighbor nodes peer-group",
                " neighbor nodes remote-as external",
                # Sessions come to the router's loopback address, one hop away.
                " neighbor nodes disable-connected-check",
                f" bgp listen range {self.listen_range} peer-group nodes",
                *self._ipv6_config(),
                " address-family ipv4 unicast",
                "  maximum-paths 64",
                " exit-address-family",
            ],
        )
        wait_for("FRR vtysh", lambda: bool(self.version()), 20, on_timeout=self.log_tail)

    def _ipv6_config(self) -> list[str]:
        if not self.listen_range_v6:
            return []
        return [
            f" bgp listen range {self.listen_range_v6} peer-group nodes",
            " address-family ipv6 unicast",
            "  neighbor nodes activate",
            "  maximum-paths 64",
            " exit-address-family",
        ]

    def _daemon(self, name: str, config: list[str]) -> Proc:
        conf = self.workdir / f"{name}.conf"
        conf.write_text("\n".join(config) + "\n")
        shutil.chown(conf, "frr", "frr")
        return Proc(
            name,
            [
                *enter(self.netns),
                find(name),
                "-N",
                self.netns,
                "-i",
                str(self.workdir / f"{name}.pid"),
                "--vty_socket",
                str(self.workdir),
                "-z",
                str(self.workdir / "zserv.api"),
                "-f",
                str(conf),
                "-P",
                "0",
                "--log",
                "stdout",
            ],
            self.workdir / f"{name}.log",
        )

    def version(self) -> str:
        return subprocess.run(
            [find("vtysh"), "--vty_socket", str(self.workdir), "-c", "show version"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def kernel_next_hops(self, prefix: str) -> set[str]:
        """The gateways of ``prefix``'s route in the namespace's kernel: where packets go."""
        routes = json.loads(run(self.netns, ["ip", "-j", "route", "show", "exact", prefix]) or "[]")
        hops = set()
        for route in routes:
            hops |= {hop["gateway"] for hop in route.get("nexthops", []) if "gateway" in hop}
            if "gateway" in route:
                hops.add(route["gateway"])
        return hops

    def stop(self) -> None:
        super().stop()
        if self.zebra is not None:
            self.zebra.stop()
            self.zebra = None

    def log_tail(self) -> str:
        zebra = self.zebra.tail() if self.zebra else ""
        return f"{super().log_tail()}\n--- zebra ---\n{zebra}"
