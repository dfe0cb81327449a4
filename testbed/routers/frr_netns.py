"""FRR as a forwarding router in a network namespace: zebra + bgpd, routes in that kernel.

Unlike :class:`~testbed.routers.frr.Frr` (bgpd alone on a loopback address),
this router installs what it learns into its namespace's kernel, so traffic
really follows the routes, and runs ``bfdd`` so a test can turn BFD on for
the nodes (:meth:`enable_bfd`) as an operator would, without a restart. It
accepts sessions from any address of ``listen_range`` (the nodes' links) with
any AS but its own, so nodes can join without a configuration change; with
``listen_range_v6`` also from IPv6 addresses, and every neighbor gets both
address families (IPv6 routes over an IPv4 session and the reverse, MP-BGP).
Each daemon gets its own config file owned by the ``frr`` user, ``-N`` names
the instance and every socket lives in workdir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

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
    bfdd: Proc | None = field(default=None, init=False)

    kind = "frr-netns"

    def start(self) -> None:
        shutil.chown(self.workdir, "frr", "frr")
        # Routes with their next hops inline, not kernel nexthop objects: the kernel deletes
        # those of a link that loses its carrier, and FRR 8.4's zebra never installs them
        # again when it comes back, so a node whose link flapped stayed out of every ECMP
        # route while bgpd listed its paths (FRR issues 14481, 15505).
        self.zebra = self._daemon(
            "zebra", ["hostname exalb-router", "no zebra nexthop kernel enable"]
        )
        # Millisecond log timestamps: when bfdd declared a session down.
        self.bfdd = self._daemon(
            "bfdd", ["hostname exalb-router", "log timestamp precision 3", "debug bfd peer"]
        )
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
                *(["--bfdctl", str(self.workdir / "bfdd.sock")] if name == "bfdd" else []),
                "-P",
                "0",
                "--log",
                "stdout",
            ],
            self.workdir / f"{name}.log",
        )

    def version(self) -> str:
        return self.vtysh("show version")

    def enable_bfd(self, nodes: list[str], rx_ms: int, tx_ms: int, multiplier: int) -> None:
        """BFD for every node's session, single hop (eBGP without ebgp-multihop), tied to BGP:
        a BFD session that goes down from Up takes the node's BGP session down with it.

        Each node is a configured neighbor: a dynamic one (the listen range) is deleted with
        its BGP session, and its BFD session with it, while the announcer holds BGP down
        until BFD is Up again, so neither side would ever start again."""
        self.configure(
            "bfd",
            "profile nodes",
            f"receive-interval {rx_ms}",
            f"transmit-interval {tx_ms}",
            f"detect-multiplier {multiplier}",
            "exit",
            "exit",
            f"router bgp {self.asn}",
            "neighbor nodes bfd",
            "neighbor nodes bfd profile nodes",
            *(f"neighbor {node} peer-group nodes" for node in nodes),
        )

    def disable_bfd(self, nodes: list[str]) -> None:
        """Undo :meth:`enable_bfd`: the nodes are dynamic neighbors again, without BFD."""
        self.configure(
            f"router bgp {self.asn}",
            "no neighbor nodes bfd",
            *(f"no neighbor {node}" for node in nodes),
        )

    def bfd_peers(self) -> dict[str, dict[str, Any]]:
        """``show bfd peers json``, by peer address."""
        return {p["peer"]: p for p in json.loads(self.vtysh("show bfd peers json") or "[]")}

    def configure(self, *lines: str) -> None:
        self.vtysh("configure terminal", *lines)

    def vtysh(self, *commands: str) -> str:
        argv = [find("vtysh"), "--vty_socket", str(self.workdir)]
        for c in commands:
            argv += ["-c", c]
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout

    def kernel_next_hops(self, prefix: str) -> set[str]:
        """The gateways of ``prefix``'s route in the namespace's kernel: where packets go."""
        return set(self.kernel_weights(prefix))

    def kernel_weights(self, prefix: str) -> dict[str, int]:
        """Each gateway of ``prefix``'s route in the namespace's kernel with its weight: the
        kernel hashes a flow to a next hop in proportion to it (1 for an unweighted hop)."""
        family = "-6" if ":" in prefix else "-4"  # ip route shows IPv4 unless told
        argv = ["ip", family, "-j", "route", "show", "exact", prefix]
        routes = json.loads(run(self.netns, argv) or "[]")
        weights = {}
        for route in routes:
            for hop in route.get("nexthops", []):
                if "gateway" in hop:
                    weights[hop["gateway"]] = int(hop.get("weight", 1))
            if "gateway" in route:
                weights[route["gateway"]] = 1
        return weights

    def route_detail(self, prefix: str) -> str:
        """What bgpd, zebra and the kernel each hold for ``prefix``: for a failure's message."""
        v6 = ":" in prefix
        kernel = run(self.netns, ["ip", "-6" if v6 else "-4", "route", "show", "exact", prefix])
        groups = run(self.netns, ["ip", "nexthop", "show"])
        bgp = self.vtysh(f"show bgp {'ipv6' if v6 else 'ipv4'} unicast {prefix}")
        afi = "ipv6" if v6 else "ip"
        zebra = self.vtysh(f"show {afi} route {prefix}", f"show {afi} nht")
        return f"bgpd:\n{bgp}\nzebra:\n{zebra}\nkernel:\n{kernel}\nnexthops:\n{groups}"

    def stop(self) -> None:
        super().stop()
        for daemon in (self.bfdd, self.zebra):
            if daemon is not None:
                daemon.stop()
        self.bfdd = self.zebra = None

    def log_tail(self) -> str:
        zebra = self.zebra.tail() if self.zebra else ""
        bfdd = self.bfdd.tail() if self.bfdd else ""
        return f"{super().log_tail()}\n--- zebra ---\n{zebra}\n--- bfdd ---\n{bfdd}"
