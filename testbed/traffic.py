"""A client that counts every failed request to a Service address, and what its record says.

Each request is a new TCP connection (``GET /``, HTTP/1.0, so the server
closes it): a route change can only show up as a failed connection, never
hide behind a kept-alive one. Requests start on a fixed schedule, several in
flight at once, so a request that hangs until its timeout does not delay the
next ones and the record keeps its time resolution through an outage. The
count and the duration are both bounded.

``python -m testbed.traffic`` runs in the bed's client namespace (through
:class:`Client`) and writes one JSON line per request; :func:`read` and
:func:`outage` turn those lines into figures.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO

from .binaries import ROOT
from .icmp import Listener
from .netns import enter
from .procs import Proc, wait_for

UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH}


@dataclass(frozen=True)
class Request:
    """One request as the client saw it; ``pod``, ``node`` and ``peer`` come from the answer."""

    start: float  # epoch seconds
    outcome: str  # ok, refused, timeout, reset, unreachable, error
    seconds: float = 0.0
    pod: str = ""
    node: str = ""
    peer: str = ""  # the source address the server saw
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def request(address: str, port: int, timeout: float) -> Request:
    """One GET / on a new connection, classified by how it ended."""
    start = time.time()
    phase = "connecting"
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            phase = "connected"  # a timeout from here on: the handshake was answered, not the GET
            conn.settimeout(max(0.01, start + timeout - time.time()))
            conn.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
            answer = _read_all(conn, start + timeout)
    except ConnectionRefusedError:
        return Request(start, "refused", time.time() - start, detail=phase)
    except TimeoutError:
        return Request(start, "timeout", time.time() - start, detail=phase)
    except (ConnectionResetError, BrokenPipeError):  # the peer's RST, seen reading or writing
        return Request(start, "reset", time.time() - start, detail=phase)
    except OSError as exc:
        outcome = "unreachable" if exc.errno in UNREACHABLE else "error"
        return Request(start, outcome, time.time() - start, detail=f"{phase}: {exc!r}")
    return _parse(start, time.time() - start, answer)


def _read_all(conn: socket.socket, deadline: float, limit: int = 65536) -> bytes:
    data = b""
    while len(data) < limit:
        if time.time() > deadline:
            raise TimeoutError
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    return data


def _parse(start: float, seconds: float, answer: bytes) -> Request:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    try:
        if status.split()[1] != b"200":
            raise ValueError(status)
        who = json.loads(body)
        return Request(start, "ok", seconds, who["pod"], who["node"], who["peer"])
    except (IndexError, ValueError, KeyError) as exc:
        return Request(start, "error", seconds, detail=f"bad answer {answer[:200]!r}: {exc!r}")


def run(
    address: str,
    port: int,
    out: IO[str],
    interval: float,
    count: int,
    duration: float,
    timeout: float,
    stop: threading.Event,
) -> int:
    """Start up to ``count`` requests every ``interval`` s for at most ``duration`` s; write each.

    Returns how many were started. Every started request is written before
    this returns (each ends within ``timeout``).
    """
    lock = threading.Lock()
    icmp = Listener(6 if ":" in address else 4)

    def one() -> None:
        line = json.dumps(asdict(_told_where(request(address, port, timeout), icmp)))
        with lock:
            out.write(line + "\n")
            out.flush()

    started = 0
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=int(timeout / interval) + 2) as pool:
        while started < count and not stop.is_set():
            due = t0 + started * interval
            if due > t0 + duration:
                break
            if stop.wait(max(0.0, due - time.monotonic())):
                break
            pool.submit(one)
            started += 1
    icmp.close()
    return started


def _told_where(r: Request, icmp: Listener) -> Request:
    """An unreachable request with the ICMP errors that arrived meanwhile: which hop said so."""
    if r.outcome != "unreachable":
        return r
    seen = icmp.since(r.start)
    own = "no ICMP error arrived: the client's own routing refused it"
    where = "; ".join(m.text() for m in seen) if seen else own
    return replace(r, detail=f"{r.detail}; {where}")


def read(path: Path) -> list[Request]:
    """The requests a run wrote, in the order they started."""
    lines = path.read_text().splitlines() if path.exists() else []
    return sorted((Request(**json.loads(line)) for line in lines if line), key=lambda r: r.start)


@dataclass(frozen=True)
class Outage:
    """What the client saw of one event (a fault, an upgrade) that happened at ``event``."""

    requests: int  # started at or after the event
    failed: int
    # Failed once connected: an established connection broken (the server stalled, or a
    # route change rehashed it to a node that has no state for it), not a refused new one.
    in_flight: int
    outcomes: dict[str, int]
    first_failure: float | None  # seconds after the event
    last_failure: float | None
    recovered: float | None  # the first good answer after the last failure, after the event

    @property
    def new_failed(self) -> int:
        """New connections that failed: refused, unreachable, or a handshake never answered."""
        return self.failed - self.in_flight

    @property
    def duration(self) -> float:
        """First failure to last failure (a failure's own start time), 0 without failures."""
        if self.first_failure is None or self.last_failure is None:
            return 0.0
        return self.last_failure - self.first_failure

    def line(self) -> str:
        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}s"

        return (
            f"{self.failed}/{self.requests} failed ({self.new_failed} new, {self.in_flight} in"
            f" flight) {self.outcomes}, outage {self.duration:.2f}s "
            f"(first failure +{s(self.first_failure)}, last +{s(self.last_failure)}), "
            f"recovered +{s(self.recovered)}"
        )


def outage(records: Sequence[Request], event: float, until: float = float("inf")) -> Outage:
    """The requests started from ``event`` until ``until`` (the next event, if any)."""
    after = [r for r in records if event <= r.start < until]
    failures = [r for r in after if not r.ok]
    outcomes: dict[str, int] = {}
    for r in failures:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    first = failures[0].start - event if failures else None
    last = failures[-1].start - event if failures else None
    since = failures[-1].start if failures else event
    good = next((r for r in after if r.ok and r.start > since), None)
    return Outage(
        requests=len(after),
        failed=len(failures),
        in_flight=sum(r.detail.startswith("connected") for r in failures),
        outcomes=outcomes,
        first_failure=first,
        last_failure=last,
        recovered=None if good is None else good.start - event,
    )


class Client:
    """``python -m testbed.traffic`` in a network namespace, its record in ``path``."""

    def __init__(self, netns: str, address: str, path: Path, **options: float) -> None:
        self.path = path
        args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        self.proc = Proc(
            f"traffic to {address}",
            # Ahead of the bed's processes: the client stands for a machine of its own.
            [
                *("nice", "-n", "-5", *enter(netns), sys.executable, "-m", "testbed.traffic"),
                *(address, str(path), *args),
            ],
            path.with_suffix(".log"),
            cwd=ROOT,
        )

    def records(self) -> list[Request]:
        return read(self.path)

    def wait_until(self, what: str, check: Callable[[list[Request]], bool], timeout: float) -> None:
        """Poll the record until ``check`` holds (``timeout`` bounds it)."""

        def holds() -> bool:
            alive = self.proc.alive()  # before the read: its last lines are in the record
            if check(self.records()):
                return True
            if not alive:
                raise RuntimeError(f"the traffic client exited: {self.proc.tail()}")
            return False

        wait_for(what, holds, timeout, interval=0.2, on_timeout=lambda: _summary(self.records()))

    def stop(self) -> list[Request]:
        """SIGTERM: requests in flight finish (within their timeout), then the record is read."""
        self.proc.stop(timeout=15)
        return self.records()


def _summary(records: Sequence[Request]) -> str:
    tail = [f"{r.start:.2f} {r.outcome} {r.node} {r.peer} {r.detail}" for r in records[-10:]]
    return f"{len(records)} requests, last ones:\n" + "\n".join(tail)


@contextmanager
def client(netns: str, address: str, path: Path, **options: float) -> Iterator[Client]:
    """A running :class:`Client`, stopped on exit whatever happened."""
    started = Client(netns, address, path, **options)
    try:
        yield started
    finally:
        started.stop()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Count every failed HTTP request to an address.")
    p.add_argument("address")
    p.add_argument("out", type=Path, help="one JSON line per request")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--interval", type=float, default=0.05, help="seconds between request starts")
    p.add_argument("--count", type=int, default=2400, help="at most this many requests")
    p.add_argument("--duration", type=float, default=120, help="at most this many seconds")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds per request")
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with args.out.open("a") as out:
        started = run(
            args.address, args.port, out, args.interval, args.count, args.duration,
            args.timeout, stop,
        )  # fmt: skip
    print(f"{started} requests to {args.address}:{args.port}")


if __name__ == "__main__":
    main()
