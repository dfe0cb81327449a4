"""The owner reference the status writer adds: ours replaces a stale Node, others stay."""

from __future__ import annotations

from announcer.kube.status import _with_owner


def test_owner_replaces_an_earlier_node_of_that_name_and_keeps_the_rest() -> None:
    ours = {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "new"}
    stale = {**ours, "uid": "old"}
    other_node = {**ours, "name": "n2", "uid": "x"}
    foreign = {"apiVersion": "example.io/v1", "kind": "Thing", "name": "n1", "uid": "y"}
    assert _with_owner([], ours) == [ours]
    assert _with_owner([stale, foreign, other_node], ours) == [foreign, other_node, ours]
