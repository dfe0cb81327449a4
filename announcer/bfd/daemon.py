"""The BFD speaker process: UDP single hop (RFC 5881) around :mod:`announcer.core.bfd`.

It runs as its own process so that nothing the announcer does (a 10,000-route pass
holding the GIL, a garbage collection) can delay a packet or a detection. It does
nothing else: it reads its sessions from stdin and writes their state changes to stdout.

stdin, one command a line (the announcer's :class:`announcer.bfd.speaker.BfdSpeaker`)::

    session <name> <peer address> <local address or -> <min tx ms> <min rx ms> <multiplier>
    remove <name>

stdout, one line a state change::

    state <name> <AdminDown|Down|Init|Up> <diagnostic code>

It exits when stdin closes (the announcer is gone), and the kernel sends it SIGTERM
when its parent dies (``PR_SET_PDEATHSIG``), whichever comes first.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass

import structlog

from announcer.core.bfd import Malformed, Session, State, decode, encode
from exalb.bgppeer import Timers
from exalb.observability import logging as obslog

CONTROL_PORT = 3784  # RFC 5881 §4
SOURCE_PORTS = (49152, 65535)
GTSM_TTL = 255  # RFC 5881 §5: sent with 255, and anything received with less is dropped
_IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # Linux value; Python lacks the name
_PR_SET_PDEATHSIG = 1
STATE_NAMES = {
    State.ADMIN_DOWN: "AdminDown",
    State.DOWN: "Down",
    State.INIT: "Init",
    State.UP: "Up",
}

log = structlog.get_logger("announcer.bfd.daemon")


@dataclass
class Peer:
    name: str
    remote: str
    local: str | None
    session: Session
    sock: socket.socket


def family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def receive_socket(af: socket.AddressFamily) -> socket.socket:
    """One listener per family on port 3784, reporting each packet's TTL/hop limit."""
    s = socket.socket(af, socket.SOCK_DGRAM)  # no SO_REUSEADDR: a second listener is an error
    if af == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        s.bind(("::", CONTROL_PORT))
    else:
        s.setsockopt(socket.IPPROTO_IP, _IP_RECVTTL, 1)
        s.bind(("0.0.0.0", CONTROL_PORT))
    s.setblocking(False)
    return s


def send_socket(remote: str, local: str | None) -> socket.socket:
    """A session's own socket: a source port of its own in 49152-65535, TTL 255."""
    af = family(remote)
    s = socket.socket(af, socket.SOCK_DGRAM)
    if af == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, GTSM_TTL)
    else:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, GTSM_TTL)
    for _ in range(64):
        try:
            s.bind((local or "", random.randint(*SOURCE_PORTS)))
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                s.close()
                raise
    else:
        s.close()
        raise OSError(errno.EADDRINUSE, "no free BFD source port after 64 tries")
    s.setblocking(False)
    return s


def hop_limit(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancdata:
        if (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ):
            return int.from_bytes(data[:4], sys.byteorder) if len(data) >= 4 else data[0]
    return None


class Daemon:
    def __init__(self) -> None:
        self.peers: dict[str, Peer] = {}
        self.listeners = [receive_socket(socket.AF_INET), receive_socket(socket.AF_INET6)]
        self.reported: dict[str, State] = {}
        self.stdin_buffer = b""

    def discriminator(self) -> int:
        used = {p.session.local_discr for p in self.peers.values()}
        while True:
            d = random.randint(1, 2**32 - 1)
            if d not in used:
                return d

    def command(self, line: str) -> None:
        words = line.split()
        if words[:1] == ["session"] and len(words) == 7:
            name, remote, local = words[1], words[2], None if words[3] == "-" else words[3]
            timers = Timers(
                min_rx_ms=int(words[5]), min_tx_ms=int(words[4]), detect_multiplier=int(words[6])
            )
            self.configure(name, remote, local, timers)
        elif words[:1] == ["remove"] and len(words) == 2:
            self.remove(words[1])
        elif words:
            log.error("unknown command; ignored", line=line)

    def configure(self, name: str, remote: str, local: str | None, timers: Timers) -> None:
        old = self.peers.get(name)
        if old and (old.remote, old.local) == (remote, local):
            old.session.retime(timers, time.monotonic())
            return
        if old:
            self.remove(name)
        try:
            sock = send_socket(remote, local)
        except OSError as exc:
            log.error("cannot open the session's socket", peer=name, error=str(exc))
            return
        session = Session(local_discr=self.discriminator(), timers=timers)
        self.peers[name] = Peer(name, remote, local, session, sock)
        self.report(self.peers[name])
        log.info("session configured", peer=name, remote=remote, local=local, timers=timers)

    def remove(self, name: str) -> None:
        """Tell the peer we stop on purpose (AdminDown, RFC 5882 §3.2: not a failure)."""
        peer = self.peers.pop(name, None)
        if peer is None:
            return
        peer.session.set_admin_down(time.monotonic())
        peer.session.next_tx = 0.0
        self.send(peer, time.monotonic())
        peer.sock.close()
        self.reported.pop(name, None)

    def send(self, peer: Peer, now: float) -> None:
        packet = peer.session.transmit(now, random.random())
        if packet is None:
            return
        try:
            peer.sock.sendto(encode(packet), (peer.remote, CONTROL_PORT))
        except OSError as exc:  # no route, link down: detection handles it
            log.debug("send failed", peer=peer.name, error=str(exc))

    def report(self, peer: Peer) -> None:
        if self.reported.get(peer.name) == peer.session.state:
            return
        self.reported[peer.name] = peer.session.state
        name = STATE_NAMES[peer.session.state]
        sys.stdout.write(f"state {peer.name} {name} {int(peer.session.diag)}\n")
        sys.stdout.flush()
        log.info("bfd state", peer=peer.name, state=name, diag=peer.session.diag.name)

    def receive(self, sock: socket.socket, now: float) -> None:
        while True:
            try:
                data, ancdata, _flags, source = sock.recvmsg(128, socket.CMSG_SPACE(4) * 2)
            except BlockingIOError:
                return
            self.dispatch(data, ancdata, source[0].split("%")[0], now)

    def dispatch(
        self, data: bytes, ancdata: list[tuple[int, int, bytes]], source: str, now: float
    ) -> None:
        ttl = hop_limit(ancdata)
        if ttl != GTSM_TTL:
            log.debug("dropped: not sent from one hop away", source=source, ttl=ttl)
            return
        try:
            packet = decode(data)
        except Malformed as exc:
            log.debug("dropped: malformed", source=source, reason=str(exc))
            return
        peer = self.select(packet.your_discr, source)
        if peer is None:
            log.debug("dropped: no session", source=source, your_discr=packet.your_discr)
            return
        peer.session.receive(packet, now)
        self.send(peer, now)  # a Final answers a Poll at once
        self.report(peer)

    def select(self, your_discr: int, source: str) -> Peer | None:
        """§6.8.6 demultiplexing: by our discriminator, else (single hop) by source address."""
        for peer in self.peers.values():
            if your_discr and peer.session.local_discr == your_discr:
                return peer if peer.remote == source else None
            if not your_discr and peer.remote == source:
                return peer
        return None

    def tick(self, now: float) -> float:
        """Expire and transmit what is due; the time of the next thing to do."""
        due = now + 1.0
        for peer in self.peers.values():
            peer.session.expire(now)
            self.send(peer, now)
            self.report(peer)
            due = min(due, peer.session.next_event())
        return due

    def read_commands(self) -> bool:
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:
            return False
        self.stdin_buffer += chunk
        *lines, self.stdin_buffer = self.stdin_buffer.split(b"\n")
        for line in lines:
            self.command(line.decode())
        return True

    def run(self) -> None:
        stdin = sys.stdin.fileno()
        while True:
            due = self.tick(time.monotonic())
            timeout = max(0.0, due - time.monotonic())
            readable, _, _ = select.select([*self.listeners, stdin], [], [], timeout)
            now = time.monotonic()
            for sock in self.listeners:
                if sock in readable:
                    self.receive(sock, now)
            if stdin in readable and not self.read_commands():
                log.info("stdin closed; exiting")
                return


def main() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    obslog.configure(os.environ.get("EXALB_BFD_LOG_LEVEL", "info"))
    Daemon().run()


if __name__ == "__main__":
    main()
