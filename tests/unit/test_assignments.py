"""The shared contract: entries round-trip, shards fit, readers tolerate bad data."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exalb.assignments import (
    SCHEMA_KEY,
    SCHEMA_VERSION,
    SHARD_BUDGET,
    Advertisement,
    Assignment,
    Degraded,
    LabelSelector,
    NewerSchema,
    Requirement,
    decode,
    encode,
    layout,
    read_shards,
    shard_count,
    shard_of,
)


def entry(i: int, **kw: object) -> Assignment:
    return Assignment(f"ns{i % 7}", f"svc-{i}", f"uid-{i}", (f"198.51.100.{i % 250}",), "p", **kw)  # type: ignore[arg-type]


def test_round_trip_with_every_field() -> None:
    a = entry(
        1,
        traffic_policy="Local",
        advertisements=(
            Advertisement(
                aggregation_length=32,
                aggregation_length_v6=120,
                communities=("65000:1",),
                large_communities=("64512:1:2",),
                local_pref=150,
                med=20,
                peers=("tor-a",),
                node_selectors=(
                    LabelSelector((("rack", "r1"),), (Requirement("zone", "In", ("a", "b")),)),
                ),
                degraded=Degraded(
                    local_pref=50,
                    med=500,
                    as_path_prepend=3,
                    communities=("65000:666",),
                    large_communities=("64512:9:9",),
                    node_selectors=(LabelSelector((("role", "standby"),)),),
                ),
                mbps_per_endpoint=10,
            ),
            Advertisement(degraded=Degraded(med=1)),
            Advertisement(),
        ),
    )
    assert decode(a.key, encode(a)) == a


def test_default_entry_is_small() -> None:
    assert len(encode(entry(1))) < 80


def test_schema_1_entries_are_read_as_they_are() -> None:
    """An older allocator may still lead during an upgrade: its entries name their Service."""
    a = entry(3, traffic_policy="Local")
    v1 = {
        "namespace": a.namespace,
        "name": a.name,
        "uid": a.uid,
        "ips": list(a.ips),
        "pool": a.pool,
        "trafficPolicy": "Local",
        "advertisements": [{"aggregationLength": 32}],
    }
    snap = read_shards([{SCHEMA_KEY: "1", a.key: json.dumps(v1), "ns0.other": json.dumps(v1)}])
    assert snap.entries == {a.key: a}
    assert "stored under" in snap.errors["ns0.other"]


def test_keys_that_do_not_name_a_service_are_refused() -> None:
    raw = encode(entry(1))
    for key in ("nodot", ".name", "ns.", "ns.a.b"):
        assert "is not <namespace>.<name>" in read_shards([{SCHEMA_KEY: "2", key: raw}]).errors[key]


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 30000))
def test_shards_fit_the_budget_and_union_is_everything(n: int) -> None:
    enc = {e.key: encode(e) for e in (entry(i) for i in range(n))}
    s = shard_count(enc)
    shards = layout(enc, s)
    assert all(sum(len(k) + len(v) for k, v in d.items()) <= SHARD_BUDGET for d in shards)
    assert set(read_shards(shards).entries) == set(enc)


def test_growth_moves_entries_only_to_i_or_i_plus_s() -> None:
    keys = [entry(i).key for i in range(2000)]
    for k in keys:
        assert shard_of(k, 8) in (shard_of(k, 4), shard_of(k, 4) + 4)


def test_reader_skips_bad_entries_and_refuses_newer_schema() -> None:
    good = entry(1)
    shard = {
        SCHEMA_KEY: str(SCHEMA_VERSION),
        good.key: encode(good),
        "ns.bad": "{not json",
        "ns.other": json.dumps({"uid": "u"}),
    }
    snap = read_shards([shard])
    assert set(snap.entries) == {good.key}
    assert "malformed" in snap.errors["ns.bad"]
    assert "malformed" in snap.errors["ns.other"]  # no ips, no pool
    with pytest.raises(NewerSchema):
        read_shards([{SCHEMA_KEY: str(SCHEMA_VERSION + 1)}])
    bad_policy = json.loads(encode(good)) | {"namespace": good.namespace, "name": good.name}
    bad_policy["trafficPolicy"] = "Sometimes"
    assert (
        "trafficPolicy"
        in read_shards([{SCHEMA_KEY: "1", good.key: json.dumps(bad_policy)}]).errors[good.key]
    )


def test_selectors_follow_kubernetes_semantics() -> None:
    sel = LabelSelector.parse(
        {
            "matchLabels": {"a": "1"},
            "matchExpressions": [
                {"key": "b", "operator": "NotIn", "values": ["x"]},
                {"key": "c", "operator": "Exists"},
            ],
        }
    )
    assert sel.matches({"a": "1", "c": ""})
    assert not sel.matches({"a": "1", "b": "x", "c": ""})
    assert not sel.matches({"a": "1"})
    assert LabelSelector().matches({})
    assert LabelSelector.parse(sel.to_json()) == sel
