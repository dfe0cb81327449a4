"""``exalbctl migrate metallb``: MetalLB's objects in, the equivalent exalb objects out.

IPAddressPool becomes a VIPPool of the same name (Services' ``metallb.io/address-pool``
annotations keep naming it); every BGPAdvertisement is folded into
``spec.bgpAdvertisements`` of each pool it selects, with Community aliases resolved;
BGPPeer (v1beta2, or the deprecated v1beta1) becomes exalb's BGPPeer of the same name.
Every field that is not carried over exactly is a :class:`Finding`, with the reason:
nothing is dropped silently. ``lost`` findings change behaviour (``--strict`` fails on
them); the others are steps for the operator (copy a Secret) or plain notes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .durations import DurationError, format_seconds, parse_duration
from .selectors import SelectorError, matches

Obj = dict[str, Any]
GROUP = "metallb.io"
EXALB_API = "exalb.io/v1alpha1"
MAX_ADVERTISEMENTS = 16  # VIPPool.spec.bgpAdvertisements maxItems
MAX_PASSWORD = 80  # BGPPeer.spec.password maxLength (TCP MD5's key limit)
# VIPPool.spec.bgpAdvertisements[].communities items, as the CRD's pattern says.
COMMUNITY = re.compile(
    r"^(no-export|no-advertise|no-export-subconfed|graceful-shutdown"
    r"|[0-9]{1,5}:[0-9]{1,5}|large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10})$"
)

NO_BFD = (
    "exalb has no BFD (ExaBGP does not implement it): failure detection is the hold time; "
    "keep BFD on the router side or lower holdTime"
)
PEER_DROPPED = {
    "bfdProfile": NO_BFD,
    "vrf": "exalb has no VRFs: the session runs in the node's default routing table",
    "dualStackAddressFamily": (
        "exalb sends IPv4 Service IPs to IPv4 peers and IPv6 ones to IPv6 peers only"
    ),
}
PEER_NOTES = {"disableMP": "deprecated in MetalLB, where it has no effect"}
PEER_CARRIED = (
    "myASN",
    "peerASN",
    "peerAddress",
    "peerPort",
    "sourceAddress",
    "connectTime",
    "enableGracefulRestart",
    "nodeSelectors",
)
PEER_HANDLED = (
    *PEER_CARRIED,
    *PEER_DROPPED,
    *PEER_NOTES,
    "holdTime",
    "keepaliveTime",
    "routerID",
    "password",
    "passwordSecret",
    "ebgpMultiHop",
    "localASN",
    "dynamicASN",
    "interface",
)
POOL_CARRIED = ("addresses", "autoAssign", "avoidBuggyIPs")
ALLOCATION_CARRIED = ("namespaces", "namespaceSelectors", "serviceSelectors")
AD_CARRIED = ("aggregationLength", "aggregationLengthV6", "localPref", "peers", "nodeSelectors")
AD_HANDLED = (*AD_CARRIED, "communities", "ipAddressPools", "ipAddressPoolSelectors")
OTHER_KINDS = {
    "L2Advertisement": ("exalb announces over BGP only (no ARP/NDP)", True),
    "BFDProfile": (NO_BFD, True),
    "ServiceBGPStatus": ("status MetalLB writes; exalb writes its own", False),
    "ServiceL2Status": ("status MetalLB writes; exalb writes its own", False),
    "ConfigurationState": ("status MetalLB writes; exalb writes its own", False),
}


@dataclass(frozen=True)
class Finding:
    source: str  # "BGPPeer/tor-a"
    field: str  # "spec.bfdProfile"; "" for the whole object
    reason: str
    lost: bool = True  # behaviour differs after migration (``--strict`` fails)


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
    communities: list[Obj] = field(default_factory=list)


# --- the whole migration -----------------------------------------------------------------
def migrate(objects: Iterable[Obj], namespace: str) -> Migration:
    """``namespace``: exalb's namespace, where the new objects go."""
    findings: list[Finding] = []
    inputs = _sort(_flatten(objects), findings)
    aliases = community_aliases(inputs.communities, findings)
    peers = [p for p in (migrate_peer(o, namespace, findings) for o in _by_name(inputs.peers)) if p]
    ads = {name: migrate_advertisement(o, aliases, findings) for name, o in inputs.ads.items()}
    pools = [
        migrate_pool(o, namespace, _ads_for(o, inputs.ads, ads, findings), findings)
        for o in _by_name(inputs.pools)
    ]
    _check_ad_references(inputs, {p["metadata"]["name"] for p in peers}, findings)
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
    slots = {"IPAddressPool": inputs.pools, "BGPPeer": inputs.peers, "BGPAdvertisement": inputs.ads}
    for o in objects:
        kind, name = str(o.get("kind", "")), _name(o)
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


def _name(o: Mapping[str, Any]) -> str:
    return str((o.get("metadata") or {}).get("name") or "")


def _spec(o: Mapping[str, Any]) -> Obj:
    spec = o.get("spec")
    return dict(spec) if isinstance(spec, Mapping) else {}


def _is_set(value: Any) -> bool:
    return value is not None and value not in ("", [], {}) and value is not False


def _metadata(o: Mapping[str, Any], namespace: str) -> Obj:
    md: Obj = {"name": _name(o), "namespace": namespace}
    labels = (o.get("metadata") or {}).get("labels")
    if labels:
        md["labels"] = dict(labels)
    return md


def _unknown(
    source: str, spec: Mapping[str, Any], known: Iterable[str], prefix: str
) -> list[Finding]:
    known = set(known)
    return [
        Finding(source, f"{prefix}.{k}", "not known to this migration (a newer MetalLB field?)")
        for k in sorted(spec)
        if k not in known and _is_set(spec[k])
    ]


# --- Community ---------------------------------------------------------------------------
def community_aliases(objs: Iterable[Obj], findings: list[Finding]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for o in sorted(objs, key=_name):
        source = f"Community/{_name(o)}"
        for i, entry in enumerate(_spec(o).get("communities") or ()):
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
    source, spec = f"BGPAdvertisement/{_name(o)}", _spec(o)
    item: Obj = {k: spec[k] for k in AD_CARRIED if _is_set(spec.get(k))}
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
    if _is_set(spec.get("serviceSelectors")):
        findings.append(
            Finding(
                source,
                "spec.serviceSelectors",
                "exalb has no per-Service advertisements: this advertisement now applies "
                "to every Service of its pools",
            )
        )
    findings += _unknown(source, spec, (*AD_HANDLED, "serviceSelectors"), "spec")
    return item


def selects(ad: Obj, pool: Obj) -> bool:
    """MetalLB's rule: by name or by label; neither given means every pool."""
    spec = _spec(ad)
    names = spec.get("ipAddressPools") or []
    selectors = spec.get("ipAddressPoolSelectors") or []
    if not names and not selectors:
        return True
    labels = (pool.get("metadata") or {}).get("labels") or {}
    return _name(pool) in names or any(matches(s, labels) for s in selectors)


def _ads_for(
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


def _check_ad_references(inputs: _Inputs, peers: set[str], findings: list[Finding]) -> None:
    for name, ad in sorted(inputs.ads.items()):
        spec, source = _spec(ad), f"BGPAdvertisement/{name}"
        for pool in spec.get("ipAddressPools") or ():
            if pool not in inputs.pools:
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
    source, spec = f"IPAddressPool/{_name(o)}", _spec(o)
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
    findings += _unknown(source, spec, (*POOL_CARRIED, "serviceAllocation"), "spec")
    return {
        "apiVersion": EXALB_API,
        "kind": "VIPPool",
        "metadata": _metadata(o, namespace),
        "spec": new,
    }


def _service_allocation(source: str, sa: Mapping[str, Any], findings: list[Finding]) -> Obj:
    out: Obj = {k: sa[k] for k in ALLOCATION_CARRIED if _is_set(sa.get(k))}
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
    findings += _unknown(source, sa, (*ALLOCATION_CARRIED, "priority"), "spec.serviceAllocation")
    return out


# --- BGPPeer -----------------------------------------------------------------------------
def migrate_peer(o: Obj, namespace: str, findings: list[Finding]) -> Obj | None:
    """exalb's BGPPeer, or None (with the reason) when a required field has no equivalent."""
    source, spec = f"BGPPeer/{_name(o)}", _spec(o)
    missing = _missing_peer_fields(spec)
    if missing:
        findings.append(Finding(source, "", f"not migrated: {missing}"))
        return None
    new: Obj = {k: spec[k] for k in PEER_CARRIED if _is_set(spec.get(k))}
    new.update(_timers(source, spec, findings))
    new.update(
        _credentials(source, spec, (o.get("metadata") or {}).get("namespace"), namespace, findings)
    )
    for key, reason in PEER_DROPPED.items():
        if _is_set(spec.get(key)):
            findings.append(Finding(source, f"spec.{key}", reason))
    for key, reason in PEER_NOTES.items():
        if _is_set(spec.get(key)):
            findings.append(Finding(source, f"spec.{key}", reason, lost=False))
    new.update(_identity(source, spec, findings))
    findings += _unknown(source, spec, PEER_HANDLED, "spec")
    return {
        "apiVersion": EXALB_API,
        "kind": "BGPPeer",
        "metadata": _metadata(o, namespace),
        "spec": new,
    }


def _missing_peer_fields(spec: Mapping[str, Any]) -> str:
    if not spec.get("myASN"):
        return "no myASN"
    if not spec.get("peerASN"):
        if spec.get("dynamicASN"):
            return f"dynamicASN {spec['dynamicASN']!r}: exalb needs a fixed peerASN"
        return "no peerASN"
    if not spec.get("peerAddress"):
        if spec.get("interface"):
            return (
                f"interface {spec['interface']!r}: exalb has no unnumbered BGP (needs peerAddress)"
            )
        return "no peerAddress"
    return ""


def _identity(source: str, spec: Mapping[str, Any], findings: list[Finding]) -> Obj:
    """routerID, ebgpMultiHop and the fields MetalLB's FRR modes add beside a fixed identity."""
    out: Obj = {}
    router_id = spec.get("routerID")
    if router_id:
        if _is_ipv4(str(router_id)):
            out["routerID"] = router_id
        else:
            findings.append(
                Finding(source, "spec.routerID", f"{router_id!r}: exalb takes an IPv4 router ID")
            )
    if spec.get("ebgpMultiHop"):
        if spec["myASN"] == spec["peerASN"]:
            findings.append(
                Finding(
                    source,
                    "spec.ebgpMultiHop",
                    "set on an iBGP session (myASN == peerASN), where it means "
                    "nothing; exalb rejects it",
                )
            )
        else:
            out["ebgpMultiHop"] = True
    if spec.get("localASN"):
        findings.append(
            Finding(
                source,
                "spec.localASN",
                f"exalb has no per-session local AS: the router now sees AS "
                f"{spec['myASN']} (myASN) instead of {spec['localASN']}",
            )
        )
    for key in ("dynamicASN", "interface"):  # both given beside peerASN/peerAddress
        if spec.get(key):
            findings.append(
                Finding(
                    source,
                    f"spec.{key}",
                    "exalb has no equivalent; the fixed peerASN/peerAddress is used",
                )
            )
    return out


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _timers(source: str, spec: Mapping[str, Any], findings: list[Finding]) -> Obj:
    """MetalLB's parseTimers: one of hold/keepalive implies the other (hold = 3 x keepalive).

    ExaBGP always sends keepalives every holdTime/3, so a keepaliveTime that differs is
    reported and left out (exalb's CRD rejects it).
    """
    try:
        hold = parse_duration(str(spec["holdTime"])) if spec.get("holdTime") else None
        keepalive = (
            parse_duration(str(spec["keepaliveTime"])) if spec.get("keepaliveTime") else None
        )
    except DurationError as exc:
        findings.append(Finding(source, "spec.holdTime/keepaliveTime", str(exc)))
        return {}
    if hold is None and keepalive is None:
        return {}
    if hold is None:
        hold = 3 * (keepalive or 0)
    out: Obj = {"holdTime": format_seconds(hold)}
    if keepalive is not None and keepalive * 3 == hold:
        out["keepaliveTime"] = format_seconds(keepalive)
    elif keepalive is not None:
        findings.append(
            Finding(
                source,
                "spec.keepaliveTime",
                f"ExaBGP sends keepalives every holdTime/3 "
                f"({format_seconds(hold / 3)}), not every "
                f"{format_seconds(keepalive)}",
            )
        )
    return out


def _credentials(
    source: str,
    spec: Mapping[str, Any],
    peer_ns: str | None,
    namespace: str,
    findings: list[Finding],
) -> Obj:
    password, secret = spec.get("password"), spec.get("passwordSecret")
    if password and len(str(password)) > MAX_PASSWORD:
        findings.append(
            Finding(
                source, "spec.password", f"longer than {MAX_PASSWORD} characters, TCP MD5's limit"
            )
        )
        return {}
    if password:
        return {"password": password}
    if not secret or not secret.get("name"):
        return {}
    secret_ns = secret.get("namespace") or peer_ns or "metallb-system"
    if secret_ns != namespace:
        findings.append(
            Finding(
                source,
                "spec.passwordSecret",
                f"exalb reads the Secret in its own namespace: copy Secret "
                f"{secret_ns}/{secret['name']} (type kubernetes.io/basic-auth, "
                f"key password) to namespace {namespace}",
                lost=False,
            )
        )
    return {"passwordSecret": {"name": secret["name"]}}
