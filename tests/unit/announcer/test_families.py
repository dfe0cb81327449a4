"""Address families: which session carries which Service address, from which source.

A session carries its own family, and with ``dualStackAddressFamily`` (MP-BGP) the
other one too; every route's next hop is of the route's family; a session starts
from an address of the peer's family.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from announcer.core.config import render
from announcer.core.decide import decide
from announcer.core.model import Endpoint, Node, Options
from announcer.core.pools import pool_space
from announcer.core.source import NO_IPV4_ROUTER_ID, router_id, source_address
from exalb.assignments import Advertisement, Assignment
from exalb.bgppeer import Peer, parse_spec

OPTS = Options(node_name="n1")
POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24", "2001:db8:5::/64"]})}
V4, V6 = "192.0.2.11", "2001:db8:200:1::2"
DUAL_NODE = Node("n1", addresses=(("InternalIP", V4), ("InternalIP", V6)))
SERVICE_IPS = ("198.51.100.1", "2001:db8:5::1")


def service(ips: tuple[str, ...] = SERVICE_IPS) -> Assignment:
    return Assignment("ns", "web", "u", ips, "pool", "Cluster", (Advertisement(),))


def routes_for(peer: Peer, node: Node = DUAL_NODE) -> dict[str, str]:
    d = decide(node, [peer], [service()], {"ns/web": [Endpoint("n1")]}, OPTS, 0, POOLS)
    return {prefix: a.next_hop for prefix, a in d.routes.get(peer.name, {}).items()}


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (Peer("v4", 64513, 64512, "192.0.2.1"), {"198.51.100.1/32": V4}),
        (Peer("v6", 64513, 64512, "2001:db8::1"), {"2001:db8:5::1/128": V6}),
        (
            Peer("v4-mp", 64513, 64512, "192.0.2.1", dual_stack_address_family=True),
            {"198.51.100.1/32": V4, "2001:db8:5::1/128": V6},
        ),
        (
            Peer("v6-mp", 64513, 64512, "2001:db8::1", dual_stack_address_family=True),
            {"198.51.100.1/32": V4, "2001:db8:5::1/128": V6},
        ),
    ],
)
def test_a_session_carries_its_family_and_with_mp_bgp_both(
    peer: Peer, expected: dict[str, str]
) -> None:
    assert routes_for(peer) == expected


def test_mp_bgp_on_a_node_without_ipv6_still_announces_ipv4_and_says_why_not_ipv6() -> None:
    node = Node("n1", addresses=(("InternalIP", V4),))
    peer = Peer("v4-mp", 64513, 64512, "192.0.2.1", dual_stack_address_family=True)
    d = decide(node, [peer], [service()], {"ns/web": [Endpoint("n1")]}, OPTS, 0, POOLS)
    assert d.routes == {"v4-mp": {"198.51.100.1/32": d.routes["v4-mp"]["198.51.100.1/32"]}}
    assert d.reasons == {"ns.web": "noIPv6NextHop"}


def test_exabgp_family_block() -> None:
    one = Peer("v6", 64513, 64512, "2001:db8::1")
    both = Peer("v4-mp", 64513, 64512, "192.0.2.1", dual_stack_address_family=True)
    assert "family { ipv6 unicast; }" in render(one, V6, V4, ["/py"])
    assert "family { ipv4 unicast; ipv6 unicast; }" in render(both, V4, V4, ["/py"])


SPEC = {"myASN": 64513, "peerASN": 64512, "peerAddress": "2001:db8::1"}


def test_spec_field_and_source_of_another_family_refused() -> None:
    assert parse_spec(SPEC, "s").families == (6,)
    assert parse_spec({**SPEC, "dualStackAddressFamily": True}, "s").families == (6, 4)
    with pytest.raises(ValueError, match="different IP families"):
        parse_spec({**SPEC, "sourceAddress": "192.0.2.11"}, "s")


@pytest.mark.parametrize(
    ("peer_address", "flag", "peer_source", "expected"),
    [
        ("2001:db8::1", None, None, V6),  # the node's InternalIP of the peer's family
        ("192.0.2.1", None, None, V4),
        ("2001:db8::1", "192.0.2.99", None, V6),  # an IPv4 flag does not apply to IPv6
        ("2001:db8::1", "2001:db8::99", None, "2001:db8::99"),
        ("2001:db8::1", "2001:db8::99", "2001:db8::98", "2001:db8::98"),
    ],
)
def test_source_address_is_of_the_peers_family(
    peer_address: str, flag: str | None, peer_source: str | None, expected: str
) -> None:
    peer = Peer("p", 64513, 64512, peer_address, source_address=peer_source)
    assert source_address(peer, DUAL_NODE, Options("n1", source_address=flag)) == expected


def test_no_source_address_of_the_family_means_no_session() -> None:
    v4_only = Node("n1", addresses=(("InternalIP", V4),))
    assert source_address(Peer("p", 1, 2, "2001:db8::1"), v4_only, OPTS) is None


def test_router_id_of_an_ipv6_session_is_the_nodes_ipv4_address() -> None:
    peer = Peer("p", 64513, 64512, "2001:db8::1")
    assert router_id(peer, DUAL_NODE, OPTS, V6) == V4
    v6_only = Node("n1", addresses=(("InternalIP", V6),))
    assert router_id(peer, v6_only, OPTS, V6) == NO_IPV4_ROUTER_ID
    assert router_id(peer, DUAL_NODE, Options("n1", router_id="192.0.2.7"), V6) == "192.0.2.7"


# --- property: whatever the node, peers and Service, families never cross ----------------
addresses_v4 = st.integers(1, 254).map(lambda i: f"192.0.2.{i}")
addresses_v6 = st.integers(1, 0xFFFF).map(lambda i: f"2001:db8:200::{i:x}")
peers = st.builds(
    lambda i, v6, dual: Peer(f"p{i}", 64513, 64512, f"2001:db8::{i}" if v6 else f"192.0.2.{i}",
                             dual_stack_address_family=dual),
    st.integers(1, 200),
    st.booleans(),
    st.booleans(),
)  # fmt: skip
service_ips = st.lists(
    st.one_of(
        st.integers(0, 255).map(lambda i: f"198.51.100.{i}"),
        st.integers(0, 0xFFFF).map(lambda i: f"2001:db8:5::{i:x}"),
    ),
    min_size=1,
    max_size=4,
    unique=True,
)


def _version(text: str) -> int:
    return ipaddress.ip_network(text, strict=False).version


@given(
    v4=st.one_of(st.none(), addresses_v4),
    v6=st.one_of(st.none(), addresses_v6),
    peer_list=st.lists(peers, max_size=4, unique_by=lambda p: p.name),
    ips=service_ips,
)
def test_routes_stay_in_the_sessions_families_with_a_next_hop_of_their_own(
    v4: str | None, v6: str | None, peer_list: list[Peer], ips: list[str]
) -> None:
    node = Node("n1", addresses=tuple(("InternalIP", a) for a in (v4, v6) if a))
    d = decide(node, peer_list, [service(tuple(ips))], {"ns/web": [Endpoint("n1")]}, OPTS, 0, POOLS)
    for peer in peer_list:
        routes = d.routes.get(peer.name, {})
        for prefix, attrs in routes.items():
            assert _version(prefix) in peer.families
            assert _version(attrs.next_hop) == _version(prefix)
        wanted = {
            f"{ipaddress.ip_address(ip)}/{32 if ':' not in ip else 128}"
            for ip in ips
            if _version(ip) in peer.families and (v4 if _version(ip) == 4 else v6)
        }
        assert set(routes) == wanted
        source = source_address(peer, node, OPTS)
        assert source is None or _version(source) == peer.version
