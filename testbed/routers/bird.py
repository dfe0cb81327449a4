"""BIRD 2 as a test router, read through birdc's text output (BIRD has no JSON).

Next hops from the tests (TEST-NET-1) are made resolvable with a static
device route, and sessions are multihop, so BIRD keeps every path it receives.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime

from testbed.binaries import find
from testbed.procs import Proc, wait_for

from .base import RibPath, Router, Session


def _proto(address: str) -> str:
    return "n_" + address.replace(".", "_").replace(":", "_")


class Bird(Router):
    kind = "bird"

    @property
    def socket(self) -> str:
        return str(self.workdir / "bird.ctl")

    def start(self) -> None:
        conf = self.workdir / "bird.conf"
        lines = [
            "log stderr all;",
            f"router id {self.router_id};",
            "timeformat protocol iso long;",
            "timeformat route iso long;",
            "protocol device { }",
            "protocol static test_next_hops {",
            "  ipv4;",
            '  route 192.0.2.0/24 via "lo";',
            "}",
        ]
        for n in self.neighbors:
            lines += [
                f"protocol bgp {_proto(n.address)} {{",
                f"  local {self.address} port {self.port} as {self.asn};",
                f"  neighbor {n.address} as {n.asn};",
                "  passive on;",
                "  multihop;",
            ]
            if n.password:
                lines.append(f'  password "{n.password}";')
            lines += [
                "  ipv4 { import all; export none; gateway recursive; igp table master4; };",
                "}",
            ]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = Proc(
            "bird",
            [
                find("bird"),
                "-f",
                "-c",
                str(conf),
                "-s",
                self.socket,
                "-P",
                str(self.workdir / "bird.pid"),
            ],
            self.workdir / "bird.log",
        )
        wait_for(
            "BIRD control socket",
            lambda: "ready" in self._birdc("show status"),
            20,
            on_timeout=self.log_tail,
        )

    def _birdc(self, *command: str) -> str:
        return subprocess.run(
            [find("birdc"), "-s", self.socket, *command],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def sessions(self) -> dict[str, Session]:
        out: dict[str, Session] = {}
        for n in self.neighbors:
            text = self._birdc("show", "protocols", "all", _proto(n.address))
            m = re.search(r"BGP state:\s+(\S+)", text)
            state = m.group(1).lower() if m else "unknown"
            since = re.search(
                r"^\S+\s+BGP\s+\S+\s+\S+\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", text, re.M
            )
            uptime = None
            if state == "established" and since:
                uptime = (datetime.now() - datetime.fromisoformat(since.group(1))).total_seconds()
            err = re.search(r"Last error:\s+(.+)", text)
            out[n.address] = Session(
                n.address, state, uptime, err.group(1).strip() if err else None
            )
        return out

    def uptime_since(self, peer: str) -> float | None:
        text = self._birdc("show", "protocols", _proto(peer))
        m = re.search(r"\bup\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+Established", text)
        return datetime.fromisoformat(m.group(1)).timestamp() if m else None

    def rib(self) -> dict[str, list[RibPath]]:
        return _parse_routes(self._birdc("show", "route", "all"))


_ROUTE = re.compile(r"^(\S+/\d+)?\s+\w+\s+\[(\S+) .*?(?:from (\S+))?\]")


def _parse_routes(text: str) -> dict[str, list[RibPath]]:
    out: dict[str, list[RibPath]] = {}
    prefix = ""
    cur: dict[str, object] | None = None

    def flush() -> None:
        if cur is not None and cur.get("bgp"):
            out.setdefault(str(cur["prefix"]), []).append(
                RibPath(
                    prefix=str(cur["prefix"]),
                    next_hop=str(cur.get("next_hop", "")),
                    as_path=tuple(cur.get("as_path", ())),  # type: ignore[arg-type]
                    origin=str(cur.get("origin", "")),
                    communities=tuple(cur.get("communities", ())),  # type: ignore[arg-type]
                    large_communities=tuple(cur.get("large", ())),  # type: ignore[arg-type]
                    local_pref=cur.get("local_pref"),  # type: ignore[arg-type]
                    med=cur.get("med"),  # type: ignore[arg-type]
                    peer=cur.get("peer"),  # type: ignore[arg-type]
                )
            )

    for line in text.splitlines():
        m = _ROUTE.match(line)
        if m and "[" in line and not line.startswith("\t"):
            flush()
            prefix = m.group(1) or prefix
            cur = {"prefix": prefix, "peer": m.group(3), "bgp": False}
            continue
        if cur is None:
            continue
        s = line.strip()
        if s.startswith("Type: BGP"):
            cur["bgp"] = True
        elif s.startswith("BGP.next_hop:"):
            cur["next_hop"] = s.split(":", 1)[1].split()[0]
        elif s.startswith("BGP.as_path:"):
            cur["as_path"] = [int(x) for x in re.findall(r"\d+", s.split(":", 1)[1])]
        elif s.startswith("BGP.origin:"):
            cur["origin"] = s.split(":", 1)[1].strip().lower()
        elif s.startswith("BGP.local_pref:"):
            cur["local_pref"] = int(s.split(":", 1)[1])
        elif s.startswith("BGP.med:"):
            cur["med"] = int(s.split(":", 1)[1])
        elif s.startswith("BGP.community:"):
            cur["communities"] = [f"{a}:{b}" for a, b in re.findall(r"\((\d+),\s*(\d+)\)", s)]
        elif s.startswith("BGP.large_community:"):
            cur["large"] = [
                f"{a}:{b}:{c}" for a, b, c in re.findall(r"\((\d+),\s*(\d+),\s*(\d+)\)", s)
            ]
    flush()
    return out
