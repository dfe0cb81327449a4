"""A node's heartbeat as every exalbctl command shows it: one cell, one JSON object."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from exalb.heartbeat import ALIVE, LEASE_PREFIX, MISSING, Heartbeat, Liveness, heartbeat_from

Obj = Mapping[str, Any]


def heartbeats_by_node(leases: Iterable[Obj]) -> dict[str, Heartbeat]:
    """The announcers' heartbeat Leases among ``leases`` (all of exalb's namespace), by node."""
    out: dict[str, Heartbeat] = {}
    for lease in leases:
        name = str((lease.get("metadata") or {}).get("name", ""))
        if name.startswith(LEASE_PREFIX):
            out[name.removeprefix(LEASE_PREFIX)] = heartbeat_from(lease)
    return out


def session_report_problem(node: str, life: Liveness) -> str | None:
    """A node's sessions, as its status reports them, when its heartbeat says they are past."""
    if life.state in (ALIVE, MISSING):
        return None
    return f"node {node}: {life.message}; its sessions below are its last report"


def heartbeat_cell(life: Liveness) -> str:
    """``4s``; ``47s (stale)``; ``none``: the age of the last renewal, as kubectl shows ages."""
    if life.state == MISSING:
        return "none"
    if life.age is None:
        return life.state
    shown = f"{life.age:.0f}s"
    return shown if life.state == ALIVE else f"{shown} ({life.state})"


def heartbeat_data(life: Liveness) -> dict[str, Any]:
    return {"state": life.state, "age": None if life.age is None else round(life.age, 1)}
