"""Reading assignment shards one at a time: changed keys, bad entries, stale shards."""

from __future__ import annotations

import json

from announcer.core.published import Published
from exalb.assignments import SCHEMA_KEY, SCHEMA_VERSION, Assignment, encode, layout

A = Assignment("ns", "a", "u1", ("198.51.100.1",), "pool")
B = Assignment("ns", "b", "u2", ("198.51.100.2",), "pool")


def shard(*entries: Assignment, **raw: str) -> dict[str, str]:
    return {SCHEMA_KEY: str(SCHEMA_VERSION), **{a.key: encode(a) for a in entries}, **raw}


def test_only_the_entries_that_changed_are_reported() -> None:
    p = Published()
    assert p.replace("s0", shard(A, B)) == {A.key, B.key}
    assert p.replace("s0", shard(A, B)) == set()
    moved = Assignment("ns", "b", "u2", ("198.51.100.9",), "pool")
    assert p.replace("s0", shard(A, moved)) == {B.key}
    assert p.get(B.key) == moved
    assert p.replace("s0", None) == {A.key, B.key}
    assert p.entries() == {}


def test_a_bad_entry_is_skipped_and_named() -> None:
    p = Published()
    assert p.replace("s0", shard(A, **{"ns.x": "{not json"})) == {A.key, "ns.x"}
    assert p.entries() == {A.key: A}
    assert set(p.errors()) == {"ns.x"}
    schema_1 = {"namespace": "ns", "name": "b", "uid": "u2", "ips": ["198.51.100.2"], "pool": "p"}
    misfiled = shard(**{"ns.y": json.dumps(schema_1)})  # a schema 1 entry names its Service
    p.replace("s1", misfiled)
    assert "stored under" in p.errors()["ns.y"]


def test_an_unreadable_shard_keeps_its_last_good_entries() -> None:
    p = Published()
    p.replace("s0", shard(A))
    assert p.replace("s0", {SCHEMA_KEY: "99"}) == set()
    assert "newer" in p.stale()["s0"]
    assert p.replace("s0", {A.key: encode(A)}) == set()
    assert "schemaVersion" in p.stale()["s0"]
    assert p.get(A.key) == A
    p.replace("s0", shard(A))
    assert p.stale() == {}


def test_a_deleted_shard_of_the_layout_is_stale_until_it_is_written_again() -> None:
    p = Published()
    p.replace("ns/exalb-assignments-0", shard(A))
    p.replace("ns/exalb-assignments-1", shard(B))
    assert p.replace("ns/exalb-assignments-1", None) == set()
    assert p.replace("ns/exalb-assignments-0", None) == set()
    assert set(p.stale()) == {"ns/exalb-assignments-0", "ns/exalb-assignments-1"}
    assert p.entries() == {A.key: A, B.key: B}
    # The allocator writes shard 0 again first; shard 1 stays stale, B is kept.
    assert p.replace("ns/exalb-assignments-0", shard(A)) == set()
    assert set(p.stale()) == {"ns/exalb-assignments-1"}
    assert p.entries() == {A.key: A, B.key: B}
    assert p.replace("ns/exalb-assignments-1", shard()) == {B.key}  # B was deleted meanwhile
    assert p.stale() == {} and p.entries() == {A.key: A}


def test_a_live_shard_wins_over_a_stale_one() -> None:
    p = Published()
    p.replace("ns/x-0", shard(A))
    p.replace("ns/x-0", None)  # stale, keeps A
    moved = Assignment("ns", "a", "u1", ("198.51.100.9",), "pool")
    assert p.replace("ns/x-1", shard(moved)) == {A.key}
    assert p.get(A.key) == moved and p.entries()[A.key] == moved


def test_a_configmap_outside_the_layout_is_forgotten_when_deleted() -> None:
    p = Published()
    p.replace("ns/by-hand", shard(A))
    assert p.replace("ns/by-hand", None) == {A.key}
    assert p.entries() == {} and p.stale() == {}


def test_an_entry_mid_move_between_shards_is_not_lost_or_an_error() -> None:
    p = Published()
    p.replace("s0", shard(A, B))
    p.replace("s1", shard(B))  # the allocator wrote the new shard first
    assert p.replace("s0", shard(A)) == {B.key}  # reported; its value is unchanged
    assert p.get(B.key) == B and p.errors() == {}


def test_a_schema_1_layout_rewritten_as_schema_2_keeps_every_entry_throughout() -> None:
    """The upgraded allocator creates the new shards, then rewrites the old one: a reader
    sees every Service, with the same assignment, after every step, whatever it reads first."""
    entries = [Assignment("ns", f"s{i}", f"u{i}", (f"198.51.100.{i}",), "pool") for i in range(40)]
    named = ({"namespace": a.namespace, "name": a.name, "uid": a.uid} for a in entries)
    v1 = {
        a.key: json.dumps({**doc, "ips": list(a.ips), "pool": a.pool})
        for a, doc in zip(entries, named, strict=True)
    }
    p = Published()
    p.replace("ns/exalb-assignments-0", {SCHEMA_KEY: "1", **v1})
    want = {a.key: a for a in entries}
    assert p.entries() == want
    new = layout({a.key: encode(a) for a in entries}, 8)
    for i in [*range(1, 8), 0]:  # creates before the update, as the writer does
        p.replace(f"ns/exalb-assignments-{i}", new[i])
        assert p.entries() == want
        assert p.errors() == {} and p.stale() == {}
