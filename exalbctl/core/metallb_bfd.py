"""MetalLB's BFDProfile, named by a BGPPeer's ``bfdProfile`` -> exalb's ``BGPPeer.spec.bfd``.

exalb runs its own BFD speaker (docs/bfd.md): asynchronous mode, single hop, no echo, no
passive role. The three timers carry over with the same meaning, units and ranges; what
the speaker does not do is reported once per profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .mapping import Finding, Obj, is_set, name_of, spec_of, unknown_fields

TIMERS = {  # MetalLB's field -> exalb's, both in ms (detectMultiplier: packets)
    "receiveInterval": "minReceiveInterval",
    "transmitInterval": "minTransmitInterval",
    "detectMultiplier": "detectMultiplier",
}
DROPPED = {
    "echoMode": "exalb's BFD speaker has no echo function (asynchronous mode only)",
    "passiveMode": "exalb's BFD speaker always starts the session (no passive role)",
    "minimumTtl": "exalb's BFD is single hop (RFC 5881): packets must arrive with TTL 255",
}
NOTES = {"echoInterval": "used only with echoMode, which exalb does not have"}


def peer_bfd(
    source: str, profile: Any, profiles: Mapping[str, Obj], findings: list[Finding]
) -> Obj:
    """``{"bfd": {...}}`` for a BGPPeer whose ``bfdProfile`` is ``profile``, or nothing."""
    if not is_set(profile):
        return {}
    found = profiles.get(str(profile))
    if found is None:
        findings.append(
            Finding(source, "spec.bfdProfile", f"BFDProfile {profile!r} not found: no BFD")
        )
        return {}
    spec = spec_of(found)
    return {"bfd": {new: spec[old] for old, new in TIMERS.items() if is_set(spec.get(old))}}


def profile_findings(profiles: Iterable[Obj], used: set[str]) -> list[Finding]:
    """What each profile loses; a profile no BGPPeer names carries over nowhere."""
    out: list[Finding] = []
    for o in profiles:
        source, spec = f"BFDProfile/{name_of(o)}", spec_of(o)
        if name_of(o) not in used:
            out.append(Finding(source, "", "no BGPPeer names it: nothing to carry over", False))
        for key, reason in DROPPED.items():
            if spec.get(key):  # false and 0 are the defaults: nothing lost
                out.append(Finding(source, f"spec.{key}", reason))
        for key, reason in NOTES.items():
            if is_set(spec.get(key)):
                out.append(Finding(source, f"spec.{key}", reason, lost=False))
        out += unknown_fields(source, spec, (*TIMERS, *DROPPED, *NOTES), "spec")
    return out
