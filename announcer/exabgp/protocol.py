"""ExaBGP's side of the API channel, one output line at a time, as plain events.

With ``exabgp_api_ack`` ExaBGP answers every command with ``done`` or ``error``;
with ``encoder json`` and the ``api`` section that ``core.config`` writes, it
also reports session state changes, what the OPENs negotiated, the UPDATEs it
sends (End-of-RIB among them; as raw packets, read by :mod:`.packets`), the UPDATEs it
receives (only the router's End-of-RIB is an event) and NOTIFICATIONs both ways.
Anything else (ExaBGP's own ``shutdown`` notice, blank lines) is no event. The session
events are :mod:`announcer.core.session`'s, which keeps the record they build.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from announcer.core.session import EndOfRib, Negotiated, Notification, StateChange

from . import packets

# ExaBGP decodes a received RFC 8203 communication into its data as this text.
_COMMUNICATION = re.compile(r'Shutdown Communication: "(?P<text>.*)"', re.DOTALL)
# A received UPDATE that is not an End-of-RIB is skipped before it is decoded: a router
# may send its whole table, and only the End-of-RIB after it is of use here.
_UPDATE = b'"type": "update"'
_RECEIVED = b'"direction": "receive"'
_EOR = b'"eor"'


@dataclass(frozen=True)
class Answer:
    """``done`` (ok) or ``error`` for the oldest command in flight."""

    ok: bool


@dataclass(frozen=True)
class UpdateSent:
    withdrawn: tuple[str, ...]  # the prefixes it withdraws


@dataclass(frozen=True)
class Unparseable:
    line: str  # the start of it, for the log


Event = Answer | StateChange | UpdateSent | Notification | Negotiated | EndOfRib | Unparseable


def parse(line: bytes) -> Event | None:
    """The event one stripped output line carries, if any."""
    if line in (b"done", b"error"):
        return Answer(line == b"done")
    if not line.startswith(b"{") or (_UPDATE in line and _RECEIVED in line and _EOR not in line):
        return None
    try:
        msg = json.loads(line)
    except ValueError:
        return Unparseable(line[:200].decode(errors="replace"))
    kind = msg.get("type")
    neighbor = msg.get("neighbor")
    if not isinstance(neighbor, dict):
        return None  # ExaBGP's own "shutdown" notice to its API process
    if kind == "state":
        reason = neighbor.get("reason")
        return StateChange(
            str(neighbor.get("state", "down")), None if reason is None else str(reason)
        )
    if neighbor.get("direction") == "send":
        return _sent(kind, neighbor.get("message"))
    if kind == "update":
        return _end_of_rib(_object(neighbor.get("message")))
    if kind == "notification":
        return _received_notification(neighbor)
    if kind == "negotiated":
        return _negotiated(_object(neighbor.get("negotiated")))
    return None


def _sent(kind: object, message: object) -> Event | None:
    """A packet ExaBGP sent (``send { packets; }``): an UPDATE or a NOTIFICATION."""
    if kind not in ("update", "notification"):
        return None
    body = message.get("body") if isinstance(message, dict) else None
    if not isinstance(body, str) or not body.startswith("0x"):
        return Unparseable(f"sent {kind} without its packet")
    try:
        raw = bytes.fromhex(body[2:])
        if kind == "notification":
            return packets.notification_sent(raw)
        sent = packets.update_sent(raw)
    except ValueError as exc:  # not hex, or packets.MalformedPacket
        return Unparseable(f"sent {kind}: {exc}")
    return EndOfRib("sent", sent) if isinstance(sent, str) else UpdateSent(sent)


def _end_of_rib(message: dict[str, Any]) -> EndOfRib | None:
    """A received UPDATE is an event only as the router's End-of-RIB."""
    eor = message.get("eor")
    if not isinstance(eor, dict):
        return None
    return EndOfRib("received", f"{eor.get('afi')} {eor.get('safi')}")


def _received_notification(neighbor: dict[str, Any]) -> Notification:
    """ExaBGP decodes a received RFC 8203 text as ``Shutdown Communication: "..."``."""
    n = _object(neighbor.get("notification"))
    text = str(n.get("message") or "")
    found = _COMMUNICATION.fullmatch(text)
    if found:
        text = found.group("text")
    elif not text.isprintable():
        text = ""
    return Notification("received", _int(n.get("code")), _int(n.get("subcode")), text)


def _negotiated(n: dict[str, Any]) -> Negotiated:
    """The capabilities both sides agreed on, named as the routers' own CLIs name them."""
    caps = [str(f) for f in _list(n.get("families"))]
    if n.get("asn4"):
        caps.append("asn4")
    if n.get("refresh") not in (None, "absent"):
        caps.append("route-refresh")
    if _int(n.get("message_size")) > 4096:
        caps.append("extended-message")
    add_path = _object(n.get("add_path"))
    for way in ("send", "receive"):
        caps += [f"add-path {way} {f}" for f in _list(add_path.get(way))]
    for flag in ("multisession", "operational"):
        if n.get(flag):
            caps.append(flag)
    return Negotiated(_int(n.get("hold_time")), tuple(caps))


def _object(value: object) -> dict[str, Any]:
    """A JSON object ExaBGP sent, or an empty one when it sent something else."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
