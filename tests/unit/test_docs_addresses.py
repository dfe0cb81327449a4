"""docs/ uses only the documentation address ranges, never the private ones.

An example copied into a real network must not collide with (or leak towards) addresses
someone already uses: 10/8, 172.16/12 and 192.168/16 are in use almost everywhere, while
192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (RFC 5737) and 2001:db8::/32 (RFC 3849)
are reserved for documentation.
"""

from __future__ import annotations

import ipaddress
import re

from testbed.binaries import ROOT

PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
# a dotted quad, optionally with a prefix length; not part of a longer dotted run (versions)
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d{1,2})?(?![\d.]*\d)")


def private_addresses(text: str) -> list[str]:
    found = []
    for m in IPV4.finditer(text):
        try:
            address = ipaddress.ip_address(m.group(1))
        except ValueError:
            continue
        if any(address in net for net in PRIVATE):
            found.append(m.group(0))
    return found


def test_the_check_finds_private_addresses() -> None:
    assert private_addresses("peer 10.0.0.1, range 172.16.0.0/12 and 192.168.1.7") == [
        "10.0.0.1",
        "172.16.0.0/12",
        "192.168.1.7",
    ]
    assert private_addresses("192.0.2.1 198.51.100.0/24 203.0.113.9 FRR 10.1.2.3.4") == []


def test_docs_use_documentation_ranges_only() -> None:
    docs = sorted((ROOT / "docs").glob("*.md"))
    assert len(docs) > 5
    found = {doc.name: private_addresses(doc.read_text()) for doc in docs}
    assert {name: hits for name, hits in found.items() if hits} == {}
