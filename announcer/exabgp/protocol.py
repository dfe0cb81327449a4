"""ExaBGP's side of the API channel, one output line at a time, as plain events.

With ``exabgp_api_ack`` ExaBGP answers every command with ``done`` or ``error``;
with ``encoder json`` and the ``api`` section that ``core.config`` writes, it
also reports session state changes, the UPDATEs it sends and NOTIFICATIONs.
Anything else (ExaBGP's own ``shutdown`` notice, blank lines) is no event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """``done`` (ok) or ``error`` for the oldest command in flight."""

    ok: bool


@dataclass(frozen=True)
class StateChange:
    state: str  # down | connected | up
    reason: str | None


@dataclass(frozen=True)
class UpdateSent:
    withdrawn: tuple[str, ...]  # the prefixes it withdraws


@dataclass(frozen=True)
class Notification:
    text: str  # "<direction> notification <code>/<subcode> '<shutdown message>'"


@dataclass(frozen=True)
class Unparseable:
    line: str  # the start of it, for the log


Event = Answer | StateChange | UpdateSent | Notification | Unparseable


def parse(line: bytes) -> Event | None:
    """The event one stripped output line carries, if any."""
    if line in (b"done", b"error"):
        return Answer(line == b"done")
    if not line.startswith(b"{"):
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
    if kind == "update" and neighbor.get("direction") == "send":
        withdraw = neighbor.get("message", {}).get("update", {}).get("withdraw", {})
        return UpdateSent(tuple(str(e.get("nlri")) for es in withdraw.values() for e in es))
    if kind == "notification":
        return Notification(_notification_text(neighbor))
    return None


def _notification_text(neighbor: dict[str, object]) -> str:
    n = neighbor.get("notification")
    n = n if isinstance(n, dict) else {}
    text = f"{neighbor.get('direction', '?')} notification {n.get('code')}/{n.get('subcode')}"
    data = str(n.get("data", ""))
    if data.startswith("0x") and len(data) > 4:
        try:
            raw = bytes.fromhex(data[2:])
        except ValueError:
            return text
        # RFC 8203 shutdown communication: a length byte, then UTF-8
        text += f" {raw[1:].decode(errors='replace')!r}"
    return text
