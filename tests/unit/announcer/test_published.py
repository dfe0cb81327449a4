"""Reading assignment shards one at a time: changed keys, bad entries, unreadable shards."""

from __future__ import annotations

import pytest

from announcer.core.published import Published
from exalb.assignments import SCHEMA_KEY, Assignment, ContractError, encode

A = Assignment("ns", "a", "u1", ("198.51.100.1",), "pool")
B = Assignment("ns", "b", "u2", ("198.51.100.2",), "pool")


def shard(*entries: Assignment, **raw: str) -> dict[str, str]:
    return {SCHEMA_KEY: "1", **{a.key: encode(a) for a in entries}, **raw}


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
    misfiled = shard(**{"ns.y": encode(B)})
    p.replace("s1", misfiled)
    assert "stored under" in p.errors()["ns.y"]


def test_an_unreadable_shard_keeps_its_last_good_entries() -> None:
    p = Published()
    p.replace("s0", shard(A))
    with pytest.raises(ContractError):
        p.replace("s0", {SCHEMA_KEY: "99"})
    with pytest.raises(ContractError):
        p.replace("s0", {A.key: encode(A)})
    assert p.get(A.key) == A


def test_an_entry_mid_move_between_shards_is_not_lost_or_an_error() -> None:
    p = Published()
    p.replace("s0", shard(A, B))
    p.replace("s1", shard(B))  # the allocator wrote the new shard first
    assert p.replace("s0", shard(A)) == {B.key}  # reported; its value is unchanged
    assert p.get(B.key) == B and p.errors() == {}
