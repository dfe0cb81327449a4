"""The traffic client's ICMP listener reads real ICMP errors and names their sender and code.

A UDP datagram to a closed port on loopback makes the kernel answer with a
port unreachable: a real ICMP error, from a known sender, about a known
destination, without any network namespace.
"""

from __future__ import annotations

import socket
import time

import pytest

from testbed.icmp import Icmp, Listener, parse
from testbed.procs import free_port


@pytest.mark.parametrize(("family", "address"), [(4, "127.0.0.1"), (6, "::1")])
def test_a_port_unreachable_on_loopback_is_read_with_its_sender_and_code(
    family: int, address: str
) -> None:
    listener = Listener(family)
    try:
        started = time.time()
        kind = socket.AF_INET6 if family == 6 else socket.AF_INET
        with socket.socket(kind, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", (address, free_port()))
        seen = listener.since(started, wait=2)
    finally:
        listener.close()
    assert seen, "no ICMP error read"
    port_unreachable = (3, 3) if family == 4 else (1, 4)
    assert (seen[0].type, seen[0].code) == port_unreachable
    assert seen[0].sender == address and seen[0].destination == address
    assert seen[0].text().endswith(f"(port) from {address} about a packet to {address}")


def test_messages_other_than_errors_and_truncated_ones_are_not_kept() -> None:
    echo_reply = bytes([0x45]) + bytes(19) + bytes([0, 0]) + bytes(6)
    assert parse(4, echo_reply, "192.0.2.1", 0.0) is None
    truncated = bytes([0x45]) + bytes(19) + bytes([3, 1]) + bytes(6) + bytes(10)
    assert parse(4, truncated, "192.0.2.1", 0.0) is None
    assert parse(6, bytes([1, 3]) + bytes(6) + bytes(20), "2001:db8::1", 0.0) is None


def test_a_host_unreachable_says_the_neighbour_resolution_failed() -> None:
    inner = bytes([0x45]) + bytes(15) + socket.inet_aton("198.51.100.7")
    data = bytes([0x45]) + bytes(19) + bytes([3, 1]) + bytes(6) + inner
    found = parse(4, data, "198.18.200.1", 1.0)
    assert found == Icmp(1.0, "198.18.200.1", 4, 3, 1, "198.51.100.7")
    assert "neighbour resolution failed" in found.text()
