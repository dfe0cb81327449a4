"""``exalbctl migrate metallb``: MetalLB's objects in, the equivalent exalb objects out.

IPAddressPool becomes a VIPPool of the same name (Services' ``metallb.io/address-pool``
annotations keep naming it), with every BGPAdvertisement folded into the pools it selects
(``metallb_pool``); BGPPeer becomes exalb's BGPPeer of the same name (``metallb_peer``).
Every field that is not carried over exactly is a :class:`Finding`, with the reason:
nothing is dropped silently. ``lost`` findings change behaviour (``--strict`` fails on
them); the others are steps for the operator (copy a Secret) or plain notes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from announcer.core.model import default_bgp_secrets_namespace

from .mapping import Finding, Obj, name_of
from .metallb_bfd import profile_findings
from .metallb_peer import migrate_peer
from .metallb_pool import (
    ads_for,
    check_ad_references,
    community_aliases,
    migrate_advertisement,
    migrate_pool,
)

GROUP = "metallb.io"
OTHER_KINDS = {
    "L2Advertisement": ("exalb announces over BGP only (no ARP/NDP)", True),
    "ServiceBGPStatus": ("status MetalLB writes; exalb writes its own", False),
    "ServiceL2Status": ("status MetalLB writes; exalb writes its own", False),
    "ConfigurationState": ("status MetalLB writes; exalb writes its own", False),
}


@dataclass(frozen=True)
class Migration:
    objects: tuple[Obj, ...]
    findings: tuple[Finding, ...]

    @property
    def lost(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.lost)


@dataclass
class _Inputs:
    pools: dict[str, Obj] = field(default_factory=dict)
    peers: dict[str, Obj] = field(default_factory=dict)
    ads: dict[str, Obj] = field(default_factory=dict)
    bfd_profiles: dict[str, Obj] = field(default_factory=dict)
    communities: list[Obj] = field(default_factory=list)


# --- the whole migration -----------------------------------------------------------------
def migrate(
    objects: Iterable[Obj], namespace: str, secrets_namespace: str | None = None
) -> Migration:
    """``namespace``: exalb's namespace, where the new objects go; ``secrets_namespace``:
    the announcers' BGP secrets namespace (default ``<namespace>-bgp-secrets``, the chart's)."""
    findings: list[Finding] = []
    inputs = _sort(_flatten(objects), findings)
    aliases = community_aliases(inputs.communities, findings)
    secrets = secrets_namespace or default_bgp_secrets_namespace(namespace)
    peers = [
        p
        for p in (
            migrate_peer(o, namespace, secrets, inputs.bfd_profiles, findings)
            for o in _by_name(inputs.peers)
        )
        if p
    ]
    used = {str(p) for o in inputs.peers.values() if (p := (o.get("spec") or {}).get("bfdProfile"))}
    findings += profile_findings(_by_name(inputs.bfd_profiles), used)
    ads = {name: migrate_advertisement(o, aliases, findings) for name, o in inputs.ads.items()}
    pools = [
        migrate_pool(o, namespace, ads_for(o, inputs.ads, ads, findings), findings)
        for o in _by_name(inputs.pools)
    ]
    check_ad_references(inputs.ads, inputs.pools, (name_of(p) for p in peers), findings)
    return Migration(tuple(pools + peers), tuple(findings))


def _flatten(objects: Iterable[Obj]) -> list[Obj]:
    """``kind: List`` (``kubectl get -o yaml``) and ``*List`` objects open into their items."""
    out: list[Obj] = []
    for o in objects:
        if str(o.get("kind", "")).endswith("List") and isinstance(o.get("items"), list):
            out += _flatten(o["items"])
        else:
            out.append(o)
    return out


def _sort(objects: list[Obj], findings: list[Finding]) -> _Inputs:
    inputs = _Inputs()
    slots = {
        "IPAddressPool": inputs.pools,
        "BGPPeer": inputs.peers,
        "BGPAdvertisement": inputs.ads,
        "BFDProfile": inputs.bfd_profiles,
    }
    for o in objects:
        kind, name = str(o.get("kind", "")), name_of(o)
        source = f"{kind}/{name}"
        if str(o.get("apiVersion", "")).split("/")[0] != GROUP:
            findings.append(Finding(source, "", "not a MetalLB object; ignored", lost=False))
        elif kind == "Community":
            inputs.communities.append(o)
        elif kind in slots and not name:
            findings.append(Finding(source, "metadata.name", "missing; object ignored"))
        elif kind in slots and name in slots[kind]:
            findings.append(Finding(source, "", "a second object of this name; ignored"))
        elif kind in slots:
            slots[kind][name] = o
        else:
            reason, lost = OTHER_KINDS.get(
                kind, ("a MetalLB kind exalb has no equivalent of", True)
            )
            findings.append(Finding(source, "", reason, lost))
    return inputs


def _by_name(objs: Mapping[str, Obj]) -> list[Obj]:
    return [objs[k] for k in sorted(objs)]
