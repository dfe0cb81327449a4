"""MetalLB's IPAddressPool + BGPAdvertisement + Community -> exalb's VIPPool.

Every BGPAdvertisement becomes an item of ``spec.bgpAdvertisements`` of each pool it
selects, with Community aliases resolved to their values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .mapping import Finding, Obj, exalb_object, is_set, name_of, spec_of, unknown_fields
from .selectors import SelectorError, matches

MAX_ADVERTISEMENTS = 16  # VIPPool.spec.bgpAdvertisements maxItems
# VIPPool.spec.bgpAdvertisements[].communities items, as the CRD's pattern says.
COMMUNITY = re.compile(
    r"^(no-export|no-advertise|no-export-subconfed|graceful-shutdown"
    r"|[0-9]{1,5}:[0-9]{1,5}|large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10})$"
)

POOL_CARRIED = ("addresses", "autoAssign", "avoidBuggyIPs")
ALLOCATION_CARRIED = ("namespaces", "namespaceSelectors", "serviceSelectors")
AD_CARRIED = ("aggregationLength", "aggregationLengthV6", "localPref", "peers", "nodeSelectors")
AD_HANDLED = (*AD_CARRIED, "communities", "ipAddressPools", "ipAddressPoolSelectors")


# --- Community ---------------------------------------------------------------------------
def community_aliases(objs: Iterable[Obj], findings: list[Finding]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for o in sorted(objs, key=name_of):
        source = f"Community/{name_of(o)}"
        for i, entry in enumerate(spec_of(o).get("communities") or ()):
            name, value = str(entry.get("name", "")), str(entry.get("value", ""))
            if name in aliases and aliases[name] != value:
                findings.append(
                    Finding(
                        source,
                        f"spec.communities[{i}]",
                        f"alias {name!r} defined twice; the first value ({aliases[name]}) is used",
                    )
                )
                continue
            aliases.setdefault(name, value)
    return aliases


def resolve_community(value: str, aliases: Mapping[str, str]) -> str | None:
    """The value exalb accepts, or None; a MetalLB alias resolves to its Community value."""
    resolved = aliases.get(value, value).strip()
    return resolved if COMMUNITY.match(resolved) else None


# --- BGPAdvertisement --------------------------------------------------------------------
def migrate_advertisement(o: Obj, aliases: Mapping[str, str], findings: list[Finding]) -> Obj:
    """One ``spec.bgpAdvertisements`` item (the same for every pool the ad selects)."""
    source, spec = f"BGPAdvertisement/{name_of(o)}", spec_of(o)
    item: Obj = {k: spec[k] for k in AD_CARRIED if is_set(spec.get(k))}
    if item.get("localPref") == 0:  # MetalLB's omitempty uint32: 0 is "not set"
        del item["localPref"]
    communities = []
    for i, c in enumerate(spec.get("communities") or ()):
        value = resolve_community(str(c), aliases)
        if value is None:
            findings.append(
                Finding(
                    source,
                    f"spec.communities[{i}]",
                    f"{c!r} is neither a community value exalb accepts nor a Community alias",
                )
            )
        elif value not in communities:
            communities.append(value)
    if communities:
        item["communities"] = communities
    if is_set(spec.get("serviceSelectors")):
        findings.append(
            Finding(
                source,
                "spec.serviceSelectors",
                "exalb has no per-Service advertisements: this advertisement now applies "
                "to every Service of its pools",
            )
        )
    findings += unknown_fields(source, spec, (*AD_HANDLED, "serviceSelectors"), "spec")
    return item


def selects(ad: Obj, pool: Obj) -> bool:
    """MetalLB's rule: by name or by label; neither given means every pool."""
    spec = spec_of(ad)
    names = spec.get("ipAddressPools") or []
    selectors = spec.get("ipAddressPoolSelectors") or []
    if not names and not selectors:
        return True
    labels = (pool.get("metadata") or {}).get("labels") or {}
    return name_of(pool) in names or any(matches(s, labels) for s in selectors)


def ads_for(
    pool: Obj, sources: Mapping[str, Obj], items: Mapping[str, Obj], findings: list[Finding]
) -> list[tuple[str, Obj]]:
    out = []
    for name in sorted(sources):
        try:
            if selects(sources[name], pool):
                out.append((name, items[name]))
        except SelectorError as exc:
            findings.append(
                Finding(
                    f"BGPAdvertisement/{name}",
                    "spec.ipAddressPoolSelectors",
                    f"{exc}; this advertisement selects no pool",
                )
            )
    return out


def check_ad_references(
    ads: Mapping[str, Obj], pools: Iterable[str], peers: Iterable[str], findings: list[Finding]
) -> None:
    """Names an advertisement gives that match nothing migrated."""
    pools, peers = set(pools), set(peers)
    for name, ad in sorted(ads.items()):
        spec, source = spec_of(ad), f"BGPAdvertisement/{name}"
        for pool in spec.get("ipAddressPools") or ():
            if pool not in pools:
                findings.append(
                    Finding(
                        source,
                        "spec.ipAddressPools",
                        f"no IPAddressPool {pool!r}; nothing to carry",
                        lost=False,
                    )
                )
        for peer in spec.get("peers") or ():
            if peer not in peers:
                findings.append(
                    Finding(
                        source, "spec.peers", f"peer {peer!r} is not among the migrated BGPPeers"
                    )
                )


# --- IPAddressPool -----------------------------------------------------------------------
def migrate_pool(
    o: Obj, namespace: str, ads: list[tuple[str, Obj]], findings: list[Finding]
) -> Obj:
    source, spec = f"IPAddressPool/{name_of(o)}", spec_of(o)
    new: Obj = {k: spec[k] for k in POOL_CARRIED if spec.get(k) is not None}
    allocation = _service_allocation(source, spec.get("serviceAllocation") or {}, findings)
    if allocation:
        new["serviceAllocation"] = allocation
    if not ads:
        findings.append(
            Finding(
                source,
                "",
                "no BGPAdvertisement selects this pool: MetalLB did not announce "
                "it over BGP; exalb announces it as /32 to every peer from every node",
            )
        )
    elif len(ads) > MAX_ADVERTISEMENTS:
        dropped = ", ".join(n for n, _ in ads[MAX_ADVERTISEMENTS:])
        findings.append(
            Finding(
                source,
                "",
                f"exalb takes at most {MAX_ADVERTISEMENTS} "
                f"advertisements per pool; not carried: {dropped}",
            )
        )
    if ads:
        new["bgpAdvertisements"] = [dict(item) for _, item in ads[:MAX_ADVERTISEMENTS]]
    findings += unknown_fields(source, spec, (*POOL_CARRIED, "serviceAllocation"), "spec")
    return exalb_object("VIPPool", o, namespace, new)


def _service_allocation(source: str, sa: Mapping[str, Any], findings: list[Finding]) -> Obj:
    out: Obj = {k: sa[k] for k in ALLOCATION_CARRIED if is_set(sa.get(k))}
    if "namespaces" in out:
        out["namespaces"] = list(dict.fromkeys(out["namespaces"]))  # the CRD's list is a set
    priority = sa.get("priority")
    if isinstance(priority, int) and priority >= 0:
        out["priority"] = priority
    elif priority is not None:
        findings.append(
            Finding(
                source,
                "spec.serviceAllocation.priority",
                f"{priority!r}: exalb takes a priority >= 0",
            )
        )
    findings += unknown_fields(
        source, sa, (*ALLOCATION_CARRIED, "priority"), "spec.serviceAllocation"
    )
    return out
