"""The ICMP errors that reach the traffic client: which hop refused a request, and how.

A connection that fails with "No route to host" says nothing of where: the
client's own routing table, a router with no route, or a hop whose neighbour
(ARP/NDP) resolution failed all end in the same errno. The ICMP message that
caused it names its sender and its code, so the client keeps every
destination-unreachable and time-exceeded message it receives and joins them
to its failed requests. None received means the error was the client's own.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass

# (family, type) -> the name the RFCs give it; only these errors are kept.
KEPT = {
    (4, 3): "destination unreachable",
    (4, 11): "time exceeded",
    (6, 1): "destination unreachable",
    (6, 2): "packet too big",
    (6, 3): "time exceeded",
}
# Codes of destination unreachable that say which part of the path failed.
UNREACHABLE_CODES = {
    4: {0: "net", 1: "host (neighbour resolution failed)", 3: "port", 13: "administratively"},
    6: {
        0: "no route",
        1: "administratively",
        3: "address (neighbour resolution failed)",
        4: "port",
    },
}


@dataclass(frozen=True)
class Icmp:
    at: float  # epoch seconds, when the client read it
    sender: str
    family: int
    type: int
    code: int
    destination: str  # of the packet it reports on

    def text(self) -> str:
        kind = KEPT[(self.family, self.type)]
        code = UNREACHABLE_CODES[self.family].get(self.code) if kind.startswith("dest") else None
        version = "ICMPv6" if self.family == 6 else "ICMP"
        return (
            f"{version} {kind} ({code or f'code {self.code}'}) from {self.sender}"
            f" about a packet to {self.destination}"
        )


def parse(family: int, data: bytes, sender: str, at: float) -> Icmp | None:
    """One raw socket read: IPv4 brings the IP header, IPv6 only the ICMPv6 message."""
    if family == 4:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8 or (family, data[0]) not in KEPT:
        return None
    inner = data[8:]
    if family == 4 and len(inner) >= 20:
        destination = str(ipaddress.IPv4Address(inner[16:20]))
    elif family == 6 and len(inner) >= 40:
        destination = str(ipaddress.IPv6Address(inner[24:40]))
    else:
        return None
    return Icmp(at, sender, family, data[0], data[1], destination)


class Listener:
    """A thread reading one family's ICMP errors into memory while the client runs."""

    def __init__(self, family: int) -> None:
        self.family = family
        self.seen: list[Icmp] = []
        self._lock = threading.Lock()
        if family == 4:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        else:
            self._sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="icmp", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            found = parse(self.family, data, address[0], time.time())
            if found is not None:
                with self._lock:
                    self.seen.append(found)

    def since(self, at: float, wait: float = 0.3) -> list[Icmp]:
        """Errors read since ``at``; a failed connect can return before this thread read the
        message that failed it, hence the short wait for one."""
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                found = [m for m in self.seen if m.at >= at]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self._sock.close()
