"""Reading a BGPSessionStatus peer entry: one line on a session that is not established.

The announcer writes the entries (``announcer.core.sessionstatus``); its node's
conditions, the allocator's BGPPeer condition and ``exalbctl`` all summarise a down
session with this one function, so the router's words read the same everywhere.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exalb.conditions import Condition

ESTABLISHED = "Established"
PEERS_USABLE = "PeersUsable"


def notification_summary(seen: Mapping[str, Any] | None) -> str:
    """``Cease/Administrative Shutdown (6/2): 'text'``; "" for no NOTIFICATION."""
    if not seen:
        return ""
    said = f"{seen.get('name')} ({seen.get('code')}/{seen.get('subcode')})"
    if seen.get("communication"):
        said += f": {seen['communication']!r}"
    return said


def down_summary(peer: str, entry: Mapping[str, Any]) -> str:
    """``tor: down since <time>, router sent Cease/Administrative Shutdown (6/2): 'text'``."""
    text = f"{peer}: {entry.get('state')} since {entry.get('since')}"
    ended_by = entry.get("endedBy")
    if ended_by == "received":
        text += f", router sent {notification_summary(entry.get('lastNotificationReceived'))}"
    elif ended_by == "sent":
        text += f", this node sent {notification_summary(entry.get('lastNotificationSent'))}"
        if entry.get("lastError"):  # why it did: a restart to apply a change, say
            text += f" ({entry['lastError']})"
    elif entry.get("lastError"):
        text += f" ({entry['lastError']})"
    return text


def node_conditions(
    peers: Sequence[Mapping[str, Any]], unusable: Mapping[str, str]
) -> tuple[Condition, ...]:
    """``peers``: the ``status.peers[]`` entries; ``unusable``: peer -> why it runs no session."""
    down = [down_summary(str(p["name"]), p) for p in peers if p.get("state") != "up"]
    if not peers:
        established = Condition(ESTABLISHED, "Unknown", "NoSessions", "no session runs")
    elif down:
        established = Condition(ESTABLISHED, "False", "SessionsDown", "; ".join(down))
    else:
        established = Condition(
            ESTABLISHED, "True", "AllEstablished", f"all {len(peers)} sessions established"
        )
    if unusable:
        why = "; ".join(f"{name}: {reason}" for name, reason in sorted(unusable.items()))
        usable = Condition(PEERS_USABLE, "False", "PeersUnusable", why)
    else:
        usable = Condition(PEERS_USABLE, "True", "AllUsable", "every selecting peer is usable")
    return established, usable
