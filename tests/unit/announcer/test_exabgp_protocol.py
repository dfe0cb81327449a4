"""ExaBGP's output lines as events, the session-shaping part of a Peer, and ExaBGP's env."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core.session import EndOfRib, Notification, StateChange
from announcer.exabgp import process
from announcer.exabgp.protocol import (
    Answer,
    Event,
    Unparseable,
    UpdateSent,
    parse,
)
from exalb.assignments import LabelSelector
from exalb.bgppeer import Peer


def _json(kind: str, neighbor: object) -> bytes:
    return json.dumps({"type": kind, "neighbor": neighbor}).encode()


EOR = {"eor": {"afi": "ipv4", "safi": "unicast"}}
# A route the router sent back, as ExaBGP 5.0.15 wrote it (recorded against FRR).
RECEIVED = (
    b'{ "exabgp": "5.0.0", "time": 1796042760.0004864, "counter": 6, "type": "update", '
    b'"neighbor": { "address": { "local": "127.1.20.11", "peer": "127.1.20.1" }, '
    b'"direction": "receive", "message": { "update": { "attribute": { "origin": "igp" }, '
    b'"announce": { "ipv4 unicast": { "127.1.20.1": [ { "nlri": "198.51.100.10/32" } ] } } } } } }'
)


def _sent(body: str) -> dict[str, object]:
    """A packet ExaBGP sent, as ``send { packets; }`` hands it over (hex, no separators)."""
    message = {"category": 2, "header": "0x" + "FF" * 16 + "0017" + "02", "body": body}
    return {"direction": "send", "message": message}


WITHDRAW = _sent("0x000A20C633640120C63364020000")  # 198.51.100.1/32 and .2/32


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"done", Answer(True)),
        (b"error", Answer(False)),
        (b"", None),
        (b"{not json", Unparseable("{not json")),
        (_json("state", {"state": "up"}), StateChange("up", None)),
        (
            _json("state", {"state": "down", "reason": "peer reset"}),
            StateChange("down", "peer reset"),
        ),
        (_json("update", WITHDRAW), UpdateSent(("198.51.100.1/32", "198.51.100.2/32"))),
        (_json("update", {**WITHDRAW, "direction": "receive"}), None),
        (RECEIVED, None),
        (RECEIVED[:-1], None),  # not even decoded: the router's table is none of our business
        (
            _json("update", {"direction": "receive", "message": EOR}),
            EndOfRib("received", "ipv4 unicast"),
        ),
        (_json("update", _sent("0x00000000")), EndOfRib("sent", "ipv4 unicast")),
        (
            _json("update", _sent("0x0000000A")),
            Unparseable("sent update: UPDATE lengths run past its end"),
        ),
        (
            _json("update", _sent("0xZZ")),
            Unparseable("sent update: non-hexadecimal number found in fromhex() arg at position 0"),
        ),
        (
            _json("update", {"direction": "send", "message": {}}),
            Unparseable("sent update without its packet"),
        ),
        (_json("notification", _sent("0x060203627965")), Notification("sent", 6, 2, "bye")),
        (
            _json(
                "notification",
                {
                    "direction": "receive",
                    "notification": {
                        "code": 6,
                        "subcode": 2,
                        "message": 'Shutdown Communication: "maintenance"',
                    },
                },
            ),
            Notification("received", 6, 2, "maintenance"),
        ),
        (json.dumps({"type": "notification", "notification": "shutdown"}).encode(), None),
    ],
)
def test_lines_become_events(line: bytes, event: Event | None) -> None:
    assert parse(line) == event


def test_node_selectors_do_not_shape_the_session() -> None:
    peer = Peer(
        "tor", 64513, 64512, "192.0.2.1", node_selectors=(LabelSelector((("rack", "r1"),)),)
    )
    assert peer.session() == Peer("tor", 64513, 64512, "192.0.2.1")
    assert Peer("tor", 64513, 64512, "192.0.2.1", hold_time=12).session() != peer.session()


@pytest.mark.parametrize(("level", "configuration"), [("debug", "false"), ("info", "true")])
def test_exabgp_never_logs_its_config_tokens_at_debug(level: str, configuration: str) -> None:
    env = process.environment(level)
    assert env["exabgp_log_configuration"] == configuration
    assert env["exabgp_log_parser"] == "false" and env["exabgp_log_all"] == "false"


# Any JSON value; inside ExaBGP's message shapes, the keys the parser looks up.
_KEYS = ["message", "eor", "afi", "safi", "notification", "code", "subcode", "negotiated"]
_KEYS += ["families", "add_path", "send", "receive", "hold_time", "message_size", "body"]
_KEYS += ["direction", "state", "reason", "asn4", "refresh"]
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.sampled_from(_KEYS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner),
    max_leaves=12,
)
_neighbors = st.dictionaries(st.sampled_from(_KEYS), _json_values, max_size=4)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["update", "notification", "state", "negotiated", "other"]), _neighbors)
def test_a_line_of_any_shape_is_an_event_or_nothing_never_a_crash(
    kind: str, neighbor: dict[str, object]
) -> None:
    # The reader thread parses every line ExaBGP writes: a raise there would stop it
    # reading, and ExaBGP would block on a full pipe (exabgp#932).
    event = parse(_json(kind, neighbor))
    assert event is None or isinstance(event, Event.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "neighbor",
    [
        {"message": [1]},
        {"negotiated": [1]},
        {"negotiated": {"families": 3, "add_path": [1]}},
        {"negotiated": {"add_path": {"send": 7}}},
    ],
)
def test_fields_of_the_wrong_type_are_read_as_absent(neighbor: dict[str, object]) -> None:
    for kind in ("update", "negotiated"):
        parse(_json(kind, neighbor))
