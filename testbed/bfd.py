"""A node and a router in two network namespaces joined by a veth pair, and FRR's bfdd.

The router side is real FRR: ``zebra`` and ``bfdd`` in the router namespace, each with
its own config file owned by the ``frr`` user, read through ``vtysh --vty_socket``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from testbed.binaries import find
from testbed.procs import Proc, wait_for

NODE_V4, ROUTER_V4 = "198.51.100.1", "198.51.100.2"
NODE_V6, ROUTER_V6 = "2001:db8::1", "2001:db8::2"


def _ip(*args: str) -> None:
    subprocess.run([find("ip"), *args], check=True, capture_output=True, timeout=10)


@dataclass
class Link:
    """Two namespaces, ``node`` and ``router``, and the veth pair between them."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def node(self) -> str:
        return f"exbfd-{self.tag}-n"

    @property
    def router(self) -> str:
        return f"exbfd-{self.tag}-r"

    @property
    def node_if(self) -> str:
        return f"bfd{self.tag}n"

    def create(self) -> None:
        router_if = f"bfd{self.tag}r"
        _ip("netns", "add", self.node)
        _ip("netns", "add", self.router)
        _ip("link", "add", self.node_if, "type", "veth", "peer", "name", router_if)
        _ip("link", "set", self.node_if, "netns", self.node)
        _ip("link", "set", router_if, "netns", self.router)
        # a link set down must not flush the IPv6 addresses (the Linux default does)
        for ns in (self.node, self.router):
            subprocess.run(
                [
                    *self.exec_prefix(ns),
                    find("sysctl"),
                    "-qw",
                    "net.ipv6.conf.all.keep_addr_on_down=1",
                ],
                check=True,
                timeout=10,
            )
        for ns, ifname, v4, v6 in (
            (self.node, self.node_if, NODE_V4, NODE_V6),
            (self.router, router_if, ROUTER_V4, ROUTER_V6),
        ):
            _ip("-n", ns, "addr", "add", f"{v4}/24", "dev", ifname)
            _ip("-n", ns, "addr", "add", f"{v6}/64", "dev", ifname, "nodad")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", ifname, "up")

    def set_node_link(self, up: bool) -> None:
        _ip("-n", self.node, "link", "set", self.node_if, "up" if up else "down")

    def delete(self) -> None:
        for ns in (self.node, self.router):
            subprocess.run(
                [find("ip"), "netns", "del", ns], check=False, capture_output=True, timeout=10
            )

    def exec_prefix(self, ns: str) -> list[str]:
        return [find("ip"), "netns", "exec", ns]


class FrrBfdd:
    """zebra + bfdd in ``link.router``, with one BFD peer per node address."""

    def __init__(self, link: Link, rx_ms: int = 300, tx_ms: int = 300, mult: int = 3) -> None:
        self.link = link
        # The frr user must reach its sockets and config: not under pytest's 0700 tmp.
        self.dir = Path(tempfile.mkdtemp(prefix="exalb-frr-bfd-"))
        self.timers = (rx_ms, tx_ms, mult)
        self.procs: list[Proc] = []

    def peer_block(self, peer: str, local: str) -> list[str]:
        rx, tx, mult = self.timers
        return [
            f" peer {peer} local-address {local}",
            f"  receive-interval {rx}",
            f"  transmit-interval {tx}",
            f"  detect-multiplier {mult}",
            " !",
        ]

    def start(self) -> None:
        (self.dir / "zebra.conf").write_text("hostname bfd-router\n")
        # millisecond log timestamps: when bfdd declared a session down, to the ms
        logging = ["log timestamp precision 3", "debug bfd peer"]
        lines = [
            *logging,
            "bfd",
            *self.peer_block(NODE_V4, ROUTER_V4),
            *self.peer_block(NODE_V6, ROUTER_V6),
        ]
        (self.dir / "bfdd.conf").write_text("\n".join([*lines, "!"]) + "\n")
        shutil.chown(self.dir, "frr", "frr")
        for f in self.dir.iterdir():
            shutil.chown(f, "frr", "frr")
        for daemon in ("zebra", "bfdd"):
            self.procs.append(
                Proc(
                    daemon,
                    [
                        *self.link.exec_prefix(self.link.router),
                        find(daemon),
                        "-N",
                        self.link.tag,
                        "-i",
                        str(self.dir / f"{daemon}.pid"),
                        "--vty_socket",
                        str(self.dir),
                        "-z",
                        str(self.dir / "zserv.api"),
                        "-f",
                        str(self.dir / f"{daemon}.conf"),
                        *(["--bfdctl", str(self.dir / "bfdd.sock")] if daemon == "bfdd" else []),
                        "--log",
                        "stdout",
                    ],
                    self.dir / f"{daemon}.log",
                )
            )
            wait_for(f"FRR {daemon} vty", (self.dir / f"{daemon}.vty").exists, 20)
        wait_for("bfdd answers", lambda: len(self.peers()) == 2, 20, on_timeout=self.log_tail)

    def vtysh(self, *commands: str) -> str:
        argv = [find("vtysh"), "--vty_socket", str(self.dir), "-d", "bfdd"]
        for c in commands:
            argv += ["-c", c]
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout

    def peers(self) -> dict[str, dict[str, Any]]:
        """``show bfd peers json``, by peer address."""
        return {p["peer"]: p for p in json.loads(self.vtysh("show bfd peers json"))}

    def status(self, peer: str) -> str:
        return str(self.peers()[peer]["status"])

    def down_events(self, peer: str) -> int:
        counters = json.loads(self.vtysh("show bfd peers counters json"))
        return next(int(c["session-down"]) for c in counters if c["peer"] == peer)

    def shutdown(self, peer: str, local: str, down: bool) -> None:
        self.vtysh(
            "configure terminal",
            "bfd",
            f"peer {peer} local-address {local}",
            "shutdown" if down else "no shutdown",
        )

    def went_down_at(self, peer: str, after: float) -> float | None:
        """Epoch time bfdd logged the session with ``peer`` going down from Up, after ``after``."""
        mark = f"peer:{peer} local:"
        for line in (self.dir / "bfdd.log").read_text(errors="replace").splitlines():
            if mark in line and "up -> down" in line:
                stamp = datetime.strptime(line[:23], "%Y/%m/%d %H:%M:%S.%f").timestamp()
                if stamp >= after:
                    return stamp
        return None

    def bfdd_pid(self) -> int:
        return self.procs[-1].pid  # ``ip netns exec`` execs bfdd in place

    def log_tail(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
