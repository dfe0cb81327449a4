"""The API process ExaBGP runs: relays its stdin/stdout to the announcer's Unix socket.

ExaBGP wants to be the parent of its API process; we want the announcer to be
the parent of ExaBGP (so Kubernetes sees one process tree and the announcer
restarts ExaBGP deliberately). This relay squares the two: ExaBGP spawns it,
it connects to the socket the announcer listens on, and copies bytes both
ways. When the announcer's side closes (the announcer died), it sends SIGTERM
to ExaBGP, its parent, whose handler closes the sessions: routes never
outlive the announcer (exabgp#304). ExaBGP alone would keep running without
its API process (``exabgp_api_terminate`` only covers failed writes).
Standard library only, so it starts quickly and costs little memory.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time


def _pump(src: int, dst: int, done: threading.Event) -> None:
    try:
        while True:
            data = os.read(src, 65536)
            if not data:
                break
            view = memoryview(data)
            while view:
                n = os.write(dst, view)
                view = view[n:]
    except OSError:
        pass
    finally:
        done.set()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m announcer.exabgp.bridge <unix-socket>", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.connect(args[0])
            break
        except OSError:
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.05)
    parent = os.getppid()
    done = threading.Event()
    fd = sock.fileno()
    for src, dst in ((0, fd), (fd, 1)):
        threading.Thread(target=_pump, args=(src, dst, done), daemon=True).start()
    done.wait()
    if parent > 1 and os.getppid() == parent:
        os.kill(parent, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
