"""Invariants of what the announcer will announce, whatever the ConfigMaps and pools say.

For any assignments ConfigMap content (hand-edited, malformed, pointing at no
pool) and any set of VIPPools (valid or not), the desired routes hold no
default route, no prefix outside the pool's addresses, and no prefix shorter
than the pool's own. And the shards going away (all of them, in any order)
never removes a desired route, nor does the allocator writing them again in
any order. The checks below use ``ipaddress`` directly, not ``core.pools``.
"""

from __future__ import annotations

import ipaddress
import json
import random
from collections.abc import Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core.decide import context
from announcer.core.desired import DesiredState
from announcer.core.model import Endpoint, Node, Options, Routes
from announcer.core.pools import (
    DEFAULT_ROUTE,
    IP_OUTSIDE_POOL,
    POOL_INVALID,
    POOL_NOT_FOUND,
    PREFIX_OUTSIDE_POOL,
    REASONS,
    PoolSpaces,
    pool_space,
)
from announcer.core.published import Published
from exalb.assignments import SCHEMA_KEY, SCHEMA_VERSION, Advertisement, Assignment, encode
from exalb.assignments.addresses import AddressError, parse_addresses
from exalb.bgppeer import Peer

OPTS = Options(node_name="n1")
NODE = Node("n1", addresses=(("InternalIP", "192.0.2.11"), ("InternalIP", "2001:db8:ff::11")))
PEERS = [Peer("tor", 64513, 64512, "127.1.0.1"), Peer("tor6", 64513, 64512, "2001:db8:ff::1")]
POOL_NAMES = ["a", "b", "c"]
CURRENT, NEWER = str(SCHEMA_VERSION), str(SCHEMA_VERSION + 1)
READABLE = [str(v) for v in range(1, SCHEMA_VERSION + 1)]  # a reader reads every older schema

pool_entries = st.sampled_from(
    [
        "198.51.100.0/24",
        "198.51.100.0/28",
        "198.51.100.64/26",
        "198.51.100.10-198.51.100.20",
        "198.51.100.7/32",
        "203.0.113.0/25",
        "203.0.113.128-203.0.113.255",
        "2001:db8::/120",
        "2001:db8:1::10-2001:db8:1::1f",
        "0.0.0.0/0",
        "::/0",
        "banana",
        "198.51.100.1/24",  # host bits set: an invalid pool
    ]
)
pool_sets = st.dictionaries(
    st.sampled_from(POOL_NAMES), st.lists(pool_entries, min_size=0, max_size=3), max_size=3
) | st.just({name: ["198.51.100.0/24", "203.0.113.0/25", "2001:db8::/120"] for name in POOL_NAMES})
ips = st.one_of(
    st.sampled_from(["198.51.100.5", "198.51.100.12", "198.51.100.200", "203.0.113.9"]),
    st.sampled_from(["203.0.113.200", "8.8.8.8", "2001:db8::5", "2001:db8:1::12", "not-an-ip"]),
    st.ip_addresses().map(str),
)
advertisements = st.builds(
    Advertisement,
    aggregation_length=st.sampled_from([32, 28, 24, 0]) | st.integers(-1, 33),
    aggregation_length_v6=st.sampled_from([128, 120, 64, 0]) | st.integers(-1, 129),
    node_selectors=st.just(()),
)


@st.composite
def assignments(draw: st.DrawFn, name: str) -> Assignment:
    return Assignment(
        "ns",
        name,
        "u",
        tuple(dict.fromkeys(draw(st.lists(ips, min_size=1, max_size=2)))),
        draw(st.sampled_from([*POOL_NAMES, "gone"])),
        draw(st.sampled_from(["Cluster", "Local"])),
        tuple(draw(st.lists(advertisements, min_size=1, max_size=2))),
    )


@st.composite
def shard_data(draw: st.DrawFn, names: Sequence[str]) -> dict[str, str]:
    data = {SCHEMA_KEY: draw(st.sampled_from([*READABLE * 4, NEWER, "x"]))}
    for name in names:
        a = draw(assignments(name))
        raw = encode(a)
        if draw(st.integers(0, 9)) == 0:  # hand-edited text: anything at all
            raw = draw(st.sampled_from(["{not json", "[]", json.dumps({"ips": ["1.1.1.1"]})]))
        data[a.key] = raw
    return data


@st.composite
def configmaps(draw: st.DrawFn) -> dict[str, dict[str, str]]:
    names = [f"s{i}" for i in range(6)]
    count = draw(st.integers(1, 3))
    return {f"ns/exalb-assignments-{i}": draw(shard_data(names[i::count])) for i in range(count)}


def desired(published: Published, pools: Mapping[str, Sequence[str]]) -> DesiredState:
    spaces = {name: pool_space({"addresses": list(addrs)}) for name, addrs in pools.items()}
    entries = published.entries().values()
    eps = {f"{a.namespace}/{a.name}": [Endpoint("n1")] for a in entries}
    state = DesiredState()
    state.rebuild(context(NODE, PEERS, OPTS, 0, spaces), entries, eps)
    return state


def _valid_networks(addrs: Sequence[str]) -> list[tuple[int, int, int]]:
    """(first, last, version) of each entry of a pool whose addresses all parse, else []."""
    try:
        parse_addresses(list(addrs))
    except AddressError:
        return []
    out: list[tuple[int, int, int]] = []
    for entry in addrs:
        if "-" in entry:
            a, b = (ipaddress.ip_address(x.strip()) for x in entry.split("-"))
            out.append((int(a), int(b), a.version))
        else:
            net = ipaddress.ip_network(entry)
            out.append((int(net.network_address), int(net.broadcast_address), net.version))
    return out


def _covered(first: int, last: int, version: int, spans: list[tuple[int, int, int]]) -> bool:
    at = first
    for lo, hi, v in sorted(spans):
        if v == version and lo <= at <= hi:
            at = hi + 1
    return at > last


def _inside_a_pool(prefix: str, pools: Mapping[str, Sequence[str]]) -> bool:
    net = ipaddress.ip_network(prefix)
    first, last = int(net.network_address), int(net.broadcast_address)
    return any(
        _covered(first, last, net.version, _valid_networks(addrs)) for addrs in pools.values()
    )


def _all_routes(state: DesiredState) -> Routes:
    return {p: a for routes in state.routes.values() for p, a in routes.items()}


@settings(max_examples=400, deadline=None)
@given(configmaps(), pool_sets)
def test_no_default_route_and_nothing_outside_the_pools(
    cms: dict[str, dict[str, str]], pools: dict[str, list[str]]
) -> None:
    published = Published()
    for name, data in cms.items():
        published.replace(name, data)
    state = desired(published, pools)
    for prefix in _all_routes(state):
        net = ipaddress.ip_network(prefix)
        assert net.prefixlen > 0, prefix
        assert _inside_a_pool(prefix, pools), (prefix, pools)
    for key, refusals in state.refused.items():
        assert refusals and all(r.reason in REASONS and r.message for r in refusals), key


@settings(max_examples=200, deadline=None)
@given(configmaps(), pool_sets, st.randoms(use_true_random=False))
def test_deleting_every_shard_then_rebuilding_them_never_removes_a_desired_route(
    cms: dict[str, dict[str, str]], pools: dict[str, list[str]], rnd: random.Random
) -> None:
    published = Published()
    for name, data in cms.items():
        published.replace(name, data)
    state = desired(published, pools)
    before = {peer: dict(routes) for peer, routes in state.routes.items()}
    order = list(cms)
    rnd.shuffle(order)
    for name in order:  # deleted one by one, in any order
        for key in published.replace(name, None):
            state.update(key, published.get(key), [Endpoint("n1")])
        assert state.routes == before
    assert set(published.stale()) == {n for n, data in cms.items() if data[SCHEMA_KEY] in READABLE}
    assert state.routes == desired(published, pools).routes
    rnd.shuffle(order)
    for name in order:  # the allocator writes them again, in any order
        for key in published.replace(name, cms[name]):
            state.update(key, published.get(key), [Endpoint("n1")])
        assert state.routes == before


def test_each_refusal_reason() -> None:
    pools = {
        "a": ["198.51.100.0/29", "198.51.100.8-198.51.100.15", "198.51.100.16-198.51.100.20"],
        "bad": ["banana"],
    }

    def refused(ip: str, pool: str, length: int) -> set[str]:
        a = Assignment("ns", "web", "u", (ip,), pool, "Cluster", (Advertisement(length),))
        published = Published()
        published.replace("ns/exalb-assignments-0", {SCHEMA_KEY: CURRENT, a.key: encode(a)})
        state = desired(published, pools)
        reasons = {r.reason for r in state.refused.get(a.key, ())}
        assert bool(_all_routes(state)) == (not reasons)
        return reasons

    assert refused("198.51.100.5", "a", 0) == {DEFAULT_ROUTE}
    assert refused("203.0.113.5", "a", 32) == {IP_OUTSIDE_POOL}
    assert refused("198.51.100.5", "a", 24) == {PREFIX_OUTSIDE_POOL}
    assert refused("198.51.100.5", "gone", 32) == {POOL_NOT_FOUND}
    assert refused("198.51.100.5", "bad", 32) == {POOL_INVALID}
    # A block across two adjacent entries of the pool is inside it; one past its end is not.
    assert refused("198.51.100.5", "a", 28) == set()
    assert refused("198.51.100.5", "a", 27) == {PREFIX_OUTSIDE_POOL}
    assert refused("198.51.100.17", "a", 30) == set()
    assert refused("198.51.100.20", "a", 30) == {PREFIX_OUTSIDE_POOL}
    assert refused("198.51.100.20", "a", 32) == set()


def test_an_invalid_pool_edit_keeps_the_last_valid_addresses() -> None:
    spaces = PoolSpaces()
    good = {"addresses": ["198.51.100.0/24"]}
    now, invalid = spaces.update({"a": good, "never": {"addresses": ["banana"]}})
    assert now["a"] == pool_space(good) and invalid == {"never": now["never"].problem}
    overlap = {"addresses": ["198.51.100.0/24", "198.51.100.128/25"]}
    now, invalid = spaces.update({"a": overlap})
    assert now["a"] == pool_space(good) and set(invalid) == {"a"}
    assert "overlap" in invalid["a"]
    now, _ = spaces.update({})  # deleted: forgotten, its prefixes refused
    assert now == {}
    now, invalid = spaces.update({"a": overlap})
    assert now["a"].problem is not None and set(invalid) == {"a"}
