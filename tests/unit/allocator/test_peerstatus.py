"""BGPPeer conditions: what each input turns True or False, and when a transition is stamped."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocator.core.peerstatus import (
    NODES_SELECTED,
    TYPES,
    USABLE,
    VALID,
    peer_conditions,
    peer_status,
)
from exalb.conditions import Condition, with_transitions
from exalb.sessionstatus import ESTABLISHED, down_summary

NS = "exalb-system"
SPEC: dict[str, Any] = {
    "myASN": 64513,
    "peerASN": 64512,
    "peerAddress": "192.0.2.1",
    "passwordSecret": {"name": "tor-md5"},
    "nodeSelectors": [{"matchLabels": {"rack": "a"}}],
}
RACK_A = {"a-1": {"rack": "a"}, "a-2": {"rack": "a", "gpu": "yes"}}
RACK_B = {"b-1": {"rack": "b"}}
MISSING = "passwordSecret 'tor-md5' is missing from namespace 'exalb-system'"
ALL_FINE: dict[str, dict[str, str]] = {"a-1": {}, "a-2": {}, "b-1": {}}


def _by_type(conds: tuple[Condition, ...]) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in conds}


@pytest.mark.parametrize(
    ("spec", "nodes", "expected"),
    [
        (
            SPEC,
            RACK_A | RACK_B,
            {
                VALID: ("True", "Valid"),
                NODES_SELECTED: ("True", "NodesSelected"),
                USABLE: ("True", "Usable"),
            },
        ),
        (
            SPEC,
            RACK_B,
            {
                VALID: ("True", "Valid"),
                NODES_SELECTED: ("False", "NoNodesSelected"),
                USABLE: ("Unknown", "NotReported"),
            },
        ),
        (
            {k: v for k, v in SPEC.items() if k not in ("passwordSecret", "nodeSelectors")},
            RACK_B,
            {
                VALID: ("True", "Valid"),
                NODES_SELECTED: ("True", "NodesSelected"),
                USABLE: ("True", "Usable"),
            },
        ),
        (
            {k: v for k, v in SPEC.items() if k != "nodeSelectors"},
            {},
            {
                VALID: ("True", "Valid"),
                NODES_SELECTED: ("False", "NoNodesSelected"),
                USABLE: ("Unknown", "NotReported"),
            },
        ),
    ],
)
def test_conditions(
    spec: dict[str, Any],
    nodes: dict[str, dict[str, str]],
    expected: dict[str, tuple[str, str]],
) -> None:
    conds = peer_conditions("tor", spec, NS, nodes, ALL_FINE)
    assert tuple(c.type for c in conds) == TYPES
    assert _by_type(conds) == expected


def test_messages_count_the_nodes() -> None:
    conds = {c.type: c for c in peer_conditions("tor", SPEC, NS, RACK_A | RACK_B, ALL_FINE)}
    assert conds[NODES_SELECTED].message == "nodeSelectors match 2 of 3 Nodes"
    none = {c.type: c for c in peer_conditions("tor", SPEC, NS, RACK_B, ALL_FINE)}
    assert "none of the 1 Nodes" in none[NODES_SELECTED].message


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"password": "x"}, "mutually exclusive"),
        ({"myASN": 0}, "myASN and peerASN must be in 1..4294967295"),
        ({"peerASN": 2**32}, "myASN and peerASN"),
        ({"peerAddress": "tor-a"}, "peerAddress 'tor-a' is not an IP address"),
        ({"holdTime": "2s"}, "holdTime must be 0 or at least 3s"),
        ({"passwordSecret": {"name": "s", "namespace": NS}}, "namespace is not supported"),
        (
            {"nodeSelectors": [{"matchExpressions": [{"key": "rack", "operator": "In"}]}]},
            "needs at least one value",
        ),
    ],
)
def test_invalid_spec_is_reported_with_the_announcers_reason(
    change: dict[str, Any], fragment: str
) -> None:
    conds = _by_type(peer_conditions("tor", {**SPEC, **change}, NS, RACK_A, ALL_FINE))
    assert conds == {
        VALID: ("False", "InvalidSpec"),
        NODES_SELECTED: ("Unknown", "InvalidSpec"),
        USABLE: ("Unknown", "InvalidSpec"),
    }
    (valid,) = (
        c for c in peer_conditions("tor", {**SPEC, **change}, NS, {}, {}) if c.type == VALID
    )
    assert fragment in valid.message


def test_a_secret_named_without_namespace_is_valid() -> None:
    assert _by_type(peer_conditions("tor", SPEC, NS, RACK_A, {}))[VALID] == ("True", "Valid")


def _usable(reports: dict[str, dict[str, str]]) -> Condition:
    (usable,) = (
        c for c in peer_conditions("tor", SPEC, NS, RACK_A | RACK_B, reports) if c.type == USABLE
    )
    return usable


def test_usable_names_the_nodes_and_the_announcers_reason() -> None:
    other = "passwordSecret 'x' has no 'password' key"
    reports = {"a-1": {"tor": MISSING}, "a-2": {"tor": MISSING, "spine": other}, "b-1": {}}
    usable = _usable(reports)
    assert (usable.status, usable.reason) == ("False", "UnusableOnNodes")
    assert usable.message == f"a-1, a-2: {MISSING}"
    # A node that is not selected is not counted, whatever it reports.
    assert _usable({"a-1": {}, "a-2": {}, "b-1": {"tor": MISSING}}).status == "True"
    # Two reasons are both named.
    split = _usable({"a-1": {"tor": MISSING}, "a-2": {"tor": other}})
    assert split.message == f"a-1: {MISSING}; a-2: {other}"


def test_usable_counts_only_the_nodes_that_reported() -> None:
    assert (_usable({}).status, _usable({}).reason) == ("Unknown", "NotReported")
    partial = _usable({"a-2": {}})
    assert (partial.status, partial.message) == (
        "True",
        "usable on the 1 selected nodes that reported",
    )
    assert _usable({"a-2": {"tor": MISSING}}).message == f"a-2: {MISSING}"


STATUSES = st.sampled_from(["True", "False", "Unknown"])
WORDS = st.text(max_size=3)
CONDITIONS = st.lists(
    st.builds(Condition, st.sampled_from(TYPES), STATUSES, WORDS, WORDS),
    unique_by=lambda c: c.type,
)


@given(before=CONDITIONS, after=CONDITIONS, generation=st.integers(0, 5))
def test_transition_time_moves_only_when_the_status_changes(
    before: list[Condition], after: list[Condition], generation: int
) -> None:
    current = with_transitions([], before, 1, "T0")
    out = with_transitions(current, after, generation, "T1")
    old = {c.type: c.status for c in before}
    assert [c["type"] for c in out] == [c.type for c in after]
    for c in out:
        assert c["lastTransitionTime"] == ("T0" if old.get(c["type"]) == c["status"] else "T1")
        assert c["observedGeneration"] == generation
    # Recomputing from the written state changes nothing: no write without a change.
    assert with_transitions(out, after, generation, "T2") == out


SHUTDOWN = {
    "state": "down",
    "since": "2026-11-30T09:00:00Z",
    "lastError": "closing connection",
    "endedBy": "received",
    "lastNotificationReceived": {
        "code": 6,
        "subcode": 2,
        "name": "Cease/Administrative Shutdown",
        "communication": "maintenance",
        "at": "2026-11-30T09:00:00Z",
    },
}


def test_established_counts_the_selected_nodes_and_names_the_routers_words() -> None:
    up = {"state": "up", "since": "2026-11-30T08:00:00Z"}
    sessions = {"a-1": {"tor": up}, "a-2": {"tor": SHUTDOWN}, "b-1": {"tor": up}}
    status = peer_status("tor", SPEC, NS, RACK_A | RACK_B, ALL_FINE, sessions)
    assert status.summary == "1/2"  # b-1 is not selected: its session does not count
    established = status.conditions[-1]
    assert (established.type, established.status) == (ESTABLISHED, "False")
    assert established.message == (
        "established on 1 of 2 selected nodes; a-2: down since 2026-11-30T09:00:00Z, "
        "router sent Cease/Administrative Shutdown (6/2): 'maintenance'"
    )
    everywhere = peer_status(
        "tor", SPEC, NS, RACK_A, ALL_FINE, {"a-1": {"tor": up}, "a-2": {"tor": up}}
    )
    assert everywhere.summary == "2/2" and everywhere.conditions[-1].status == "True"


def test_a_selected_node_without_a_session_is_not_established() -> None:
    status = peer_status("tor", SPEC, NS, RACK_A, ALL_FINE, {"a-1": {"tor": {"state": "up"}}})
    assert status.summary == "1/2"
    assert status.conditions[-1].message.endswith("a-2: no session reported")
    nothing = peer_status("tor", SPEC, NS, RACK_B, ALL_FINE, {})
    assert (nothing.summary, nothing.conditions[-1].status) == ("0/0", "Unknown")
    invalid = peer_status("tor", {**SPEC, "myASN": 0}, NS, RACK_A, ALL_FINE, {})
    assert invalid.conditions[-1].reason == "InvalidSpec"


def test_a_session_this_node_closed_names_the_reason_with_the_cease() -> None:
    closed = {
        "state": "down",
        "since": "2026-11-30T09:00:00Z",
        "endedBy": "sent",
        "lastNotificationSent": {"code": 6, "subcode": 2, "name": "Cease/Administrative Shutdown"},
        "lastError": "closed by this node to apply a changed BGPPeer or password Secret",
    }
    assert down_summary("tor", closed) == (
        "tor: down since 2026-11-30T09:00:00Z, this node sent Cease/Administrative Shutdown "
        "(6/2) (closed by this node to apply a changed BGPPeer or password Secret)"
    )
