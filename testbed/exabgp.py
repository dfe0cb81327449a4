"""A bare ExaBGP speaker for harness smoke tests (not the product's announcer).

It proves that the pinned ExaBGP, the routers and the RIB readers agree,
before any exalb code is involved: commands go to ExaBGP's API through a
FIFO read by ``cat``, which ExaBGP runs as its API process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .binaries import find
from .procs import Proc


@dataclass(frozen=True)
class Peer:
    address: str
    port: int
    asn: int
    password: str | None = None


@dataclass
class ExaBgpSpeaker:
    local_address: str
    asn: int
    peers: Sequence[Peer]
    workdir: Path
    hold_time: int = 9
    argv_prefix: Sequence[str] = ()  # e.g. nsenter into the node's network namespace
    proc: Proc | None = field(default=None, init=False)
    _fifo_fd: int | None = field(default=None, init=False)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fifo = self.workdir / "commands"
        if not fifo.exists():
            os.mkfifo(fifo)
        blocks = [f"process ctl {{\n  run /bin/cat {fifo};\n  encoder json;\n}}"]
        for p in self.peers:
            md5 = f"  md5-password {p.password};\n" if p.password else ""
            blocks.append(
                f"neighbor {p.address} {{\n"
                f"  router-id {self.local_address};\n"
                f"  local-address {self.local_address};\n"
                f"  local-as {self.asn};\n  peer-as {p.asn};\n"
                f"  connect {p.port};\n  hold-time {self.hold_time};\n{md5}"
                "  family { ipv4 unicast; }\n"
                "  api { processes [ ctl ]; }\n}"
            )
        conf = self.workdir / "exabgp.conf"
        conf.write_text("\n".join(blocks) + "\n")
        self.proc = Proc(
            "exabgp",
            [*self.argv_prefix, find("exabgp"), "server", str(conf)],
            self.workdir / "exabgp.log",
            env={
                "exabgp_daemon_drop": "false",
                "exabgp_api_cli": "false",
                "exabgp_log_destination": "stdout",
            },
        )
        # Opening for write blocks until ExaBGP's `cat` opens the FIFO for reading.
        self._fifo_fd = os.open(fifo, os.O_WRONLY)

    def command(self, line: str) -> None:
        assert self._fifo_fd is not None, "start() first"
        os.write(self._fifo_fd, (line.rstrip("\n") + "\n").encode())

    def stop(self) -> None:
        if self._fifo_fd is not None:
            os.close(self._fifo_fd)
            self._fifo_fd = None
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
