from __future__ import annotations

import pytest

from allocator.core.addresses import usable_count
from exalb.assignments.addresses import (
    AddressError,
    AddressRange,
    parse_addresses,
    parse_entry,
    parse_ip,
)


def test_cidr_and_range_entries() -> None:
    r = parse_entry("198.51.100.0/30")
    assert (r.size, r.version, str(r)) == (4, 4, "198.51.100.0-198.51.100.3")
    r2 = parse_entry(" 203.0.113.10 - 203.0.113.12 ")
    assert (r2.size, str(r2)) == (3, "203.0.113.10-203.0.113.12")
    assert parse_entry("198.51.100.7/32").size == 1
    assert parse_entry("2001:db8::/126").size == 4


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("198.51.100.1/24", "host bits set"),
        ("198.51.100.9-198.51.100.1", "starts after it ends"),
        ("198.51.100.1-2001:db8::1", "mixes IPv4 and IPv6"),
        ("banana", "not a CIDR or range"),
        ("198.51.100.300-198.51.100.301", "not an IP address"),
    ],
)
def test_bad_entries_say_why(entry: str, fragment: str) -> None:
    with pytest.raises(AddressError, match=fragment):
        parse_entry(entry)


def test_entries_of_one_pool_may_not_overlap() -> None:
    with pytest.raises(AddressError, match="overlap"):
        parse_addresses(["198.51.100.0/24", "198.51.100.128-198.51.100.130"])
    with pytest.raises(AddressError, match="empty"):
        parse_addresses([])


def test_buggy_ip_counting_matches_brute_force() -> None:
    for start, end in [
        (0, 255),
        (1, 254),
        (250, 600),
        (255, 256),
        (0, 0),
        (7, 7),
        (256 * 3, 256 * 5 + 3),
    ]:
        r = AddressRange(start, end, 4)
        brute = sum(1 for ip in range(start, end + 1) if ip & 0xFF not in (0, 255))
        assert usable_count(r, True) == brute, (start, end)
        assert usable_count(r, False) == end - start + 1


def test_parse_ip() -> None:
    assert parse_ip("198.51.100.1") == (3325256705, 4)
    assert parse_ip("2001:db8::1")[1] == 6
