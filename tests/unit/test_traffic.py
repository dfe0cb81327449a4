"""The traffic client classifies each request by how it ended, and its figures add up."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest

from testbed.procs import free_port
from testbed.traffic import Request, outage, request, run


class _Named(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"pod": "web-1", "node": "node1", "peer": self.client_address[0]})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Named)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def test_an_answer_names_the_pod_node_and_the_peer_the_server_saw(server: int) -> None:
    r = request("127.0.0.1", server, timeout=2)
    assert (r.outcome, r.pod, r.node, r.peer) == ("ok", "web-1", "node1", "127.0.0.1")


def test_a_closed_port_is_refused() -> None:
    assert request("127.0.0.1", free_port(), timeout=2).outcome == "refused"


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes handshakes; nobody reads
        r = request("127.0.0.1", listener.getsockname()[1], timeout=0.3)
    assert r.outcome == "timeout"
    assert 0.25 < r.seconds < 3


def test_a_server_that_resets_is_a_reset() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def reset() -> None:
            conn, _ = listener.accept()
            linger_zero = struct.pack("ii", 1, 0)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
            conn.close()  # linger 0: RST instead of FIN

        thread = threading.Thread(target=reset)
        thread.start()
        r = request("127.0.0.1", listener.getsockname()[1], timeout=2)
        thread.join(5)
    assert r.outcome == "reset", r


def test_the_run_is_bounded_in_count_and_writes_every_request(server: int) -> None:
    out = StringIO()
    started = run("127.0.0.1", server, out, 0.01, 25, 10, 1, threading.Event())
    lines = out.getvalue().splitlines()
    assert started == len(lines) == 25
    assert all(json.loads(line)["outcome"] == "ok" for line in lines)


def test_the_run_is_bounded_in_time() -> None:
    out = StringIO()
    started = run("127.0.0.1", free_port(), out, 0.05, 10_000, 0.5, 1, threading.Event())
    assert 1 <= started <= 11  # due times 0, 0.05, ... 0.5 s; a starved loop starts fewer
    assert len(out.getvalue().splitlines()) == started


def _req(t: float, outcome: str = "ok", phase: str = "connecting") -> Request:
    return Request(start=t, outcome=outcome, detail="" if outcome == "ok" else phase)


def test_outage_is_first_to_last_failure_and_recovery_the_first_answer_after() -> None:
    records = [_req(99.0, "timeout"), _req(100.0), _req(100.5, "timeout"), _req(101.0),
               _req(101.5, "refused"), _req(102.0), _req(102.5)]  # fmt: skip
    o = outage(records, event=100.0)
    assert (o.requests, o.failed) == (6, 2)
    assert o.outcomes == {"timeout": 1, "refused": 1}
    assert (o.first_failure, o.last_failure, o.duration, o.recovered) == (0.5, 1.5, 1.0, 2.0)


def test_without_failures_the_outage_is_zero() -> None:
    o = outage([_req(1.0), _req(2.0)], event=0.5)
    assert (o.failed, o.duration, o.first_failure, o.recovered) == (0, 0.0, None, 0.5)


def test_failures_never_followed_by_an_answer_have_not_recovered() -> None:
    o = outage([_req(1.0), _req(2.0, "timeout")], event=0.0)
    assert (o.failed, o.recovered) == (1, None)


def test_a_window_ends_where_the_next_event_starts() -> None:
    records = [_req(1.0, "timeout"), _req(2.0), _req(3.0, "refused"), _req(4.0)]
    o = outage(records, event=0.5, until=3.0)
    assert (o.requests, o.failed, o.recovered) == (2, 1, 1.5)


def test_a_failure_once_connected_is_an_in_flight_one_not_a_failed_new_connection() -> None:
    records = [_req(1.0, "reset", "connected"), _req(2.0, "timeout"), _req(3.0, "refused")]
    o = outage(records, event=0.0)
    assert (o.failed, o.in_flight, o.new_failed) == (3, 1, 2)
