"""What the allocator needs to know about one Service, read from its API object.

Annotations are read under ``exalb.io/`` and, for migration from MetalLB,
``metallb.io/`` (and the older ``metallb.universe.tf/``); ours win when both
are present. A malformed annotation never raises: it becomes an entry in
:attr:`ServiceInfo.errors` that the controller reports as an Event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exalb.assignments.addresses import AddressError, parse_ip
from exalb.assignments.slicescope import SERVICE_LABEL

from .attributes import ServiceAttributes, parse_attributes

PREFIXES = ("exalb.io/", "metallb.io/", "metallb.universe.tf/")
POOL_ANNOTATION = "exalb.io/ip-allocated-from-pool"


@dataclass(frozen=True)
class ServiceInfo:
    namespace: str
    name: str
    uid: str
    created: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ours: bool = True
    requested_ips: tuple[str, ...] = ()
    requested_pool: str | None = None
    sharing_key: str | None = None
    ports: frozenset[tuple[str, int]] = frozenset()
    tcp_ports: tuple[int, ...] = ()  # in spec order: the data path check's default is the first
    cluster_ip: str = ""  # spec.clusterIP; "" when none (headless "None", not yet allocated)
    traffic_policy: str = "Cluster"
    backend_key: str = ""  # "" for Cluster; the selector for Local (MetalLB's sharing rule)
    families: tuple[int, ...] = (4,)  # wanted, primary first
    require_all_families: bool = False
    current_ips: tuple[str, ...] = ()  # from status.loadBalancer.ingress (the truth)
    current_pool: str | None = None  # from our pool annotation
    labelled: bool = False  # carries SERVICE_LABEL, which scopes the announcers' slice watch
    errors: tuple[str, ...] = ()
    attributes: ServiceAttributes | None = None  # BGP attributes from its annotations
    attribute_errors: tuple[str, ...] = ()  # reported; never stop the allocation

    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # read tens of thousands of times per plan: computed once
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}")


def _annotation(ann: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """(value, the prefix it was found under), exalb.io first."""
    for p in PREFIXES:
        if p + name in ann:
            return ann[p + name], p
    return None, None


def claims(service_type: str | None, service_class: str | None, lb_class: str | None) -> bool:
    """Whether exalb handles a Service: a LoadBalancer whose ``spec.loadBalancerClass`` is
    exactly the configured class, where no class configured means no class on the Service.

    MetalLB's rule: with it, two implementations running side by side (during a
    migration) never both claim one Service, and a class-less Service has one owner.
    """
    return service_type == "LoadBalancer" and service_class == lb_class


def parse_service(obj: Mapping[str, Any], lb_class: str | None = None) -> ServiceInfo:
    md = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ann: Mapping[str, str] = md.get("annotations") or {}
    errors: list[str] = []
    families, require_all = _families(spec)
    requested = _requested_ips(spec, ann, families, errors)
    pool, pool_prefix = _annotation(ann, "address-pool")
    if pool is not None and not pool.strip():
        errors.append(f"{pool_prefix}address-pool is empty")
        pool = None
    key, _ = _annotation(ann, "allow-shared-ip")
    ports = _ports(spec, errors)
    cluster_ip = str(spec.get("clusterIP") or "")
    etp, backend = _traffic_policy(spec)
    attributes, attribute_errors = parse_attributes(ann)
    return ServiceInfo(
        namespace=str(md.get("namespace", "")),
        name=str(md.get("name", "")),
        uid=str(md.get("uid", "")),
        created=str(md.get("creationTimestamp", "")),
        labels=dict(md.get("labels") or {}),
        ours=claims(spec.get("type"), spec.get("loadBalancerClass"), lb_class),
        requested_ips=tuple(requested),
        requested_pool=pool.strip() if pool else None,
        sharing_key=key or None,
        ports=frozenset(ports),
        tcp_ports=tuple(port for proto, port in ports if proto == "TCP"),
        cluster_ip="" if cluster_ip == "None" else cluster_ip,
        traffic_policy=etp,
        backend_key=backend,
        families=families,
        require_all_families=require_all,
        current_ips=_current_ips(obj.get("status") or {}),
        current_pool=ann.get(POOL_ANNOTATION),
        labelled=(md.get("labels") or {}).get(SERVICE_LABEL) == "true",
        errors=tuple(errors),
        attributes=attributes,
        attribute_errors=attribute_errors,
    )


def _families(spec: Mapping[str, Any]) -> tuple[tuple[int, ...], bool]:
    """The address families the Service gets, in its order; whether it requires them all."""
    families = tuple(4 if f == "IPv4" else 6 for f in (spec.get("ipFamilies") or ["IPv4"]))
    policy = spec.get("ipFamilyPolicy") or "SingleStack"
    if policy == "SingleStack":
        families = families[:1]
    elif len(families) == 1:
        families = (families[0], 6 if families[0] == 4 else 4)
    return families, policy == "RequireDualStack"


def _requested_ips(
    spec: Mapping[str, Any], ann: Mapping[str, str], families: tuple[int, ...], errors: list[str]
) -> list[str]:
    """The IPs the annotation (or the deprecated spec.loadBalancerIP) asks for."""
    requested: list[str] = []
    ips_value, ips_prefix = _annotation(ann, "loadBalancerIPs")
    if ips_value is not None and spec.get("loadBalancerIP"):
        errors.append(
            f"both {ips_prefix}loadBalancerIPs and spec.loadBalancerIP are set; "
            "use only the annotation"
        )
    elif ips_value is not None:
        requested = [s.strip() for s in ips_value.split(",") if s.strip()]
        if not requested:
            errors.append(f"{ips_prefix}loadBalancerIPs is empty")
    elif spec.get("loadBalancerIP"):
        requested = [str(spec["loadBalancerIP"]).strip()]
    seen_versions: list[int] = []
    for ip in requested:
        try:
            seen_versions.append(parse_ip(ip)[1])
        except AddressError:
            errors.append(f"requested IP {ip!r} is not an IP address")
    if len(seen_versions) != len(set(seen_versions)):
        errors.append("at most one requested IP per address family")
    elif seen_versions and not set(seen_versions) <= set(families):
        errors.append(
            f"requested IP family does not match the Service's ipFamilies {spec.get('ipFamilies')}"
        )
    return requested


def _ports(spec: Mapping[str, Any], errors: list[str]) -> dict[tuple[str, int], None]:
    """(protocol, port) of each port entry, in spec order (a dict as an ordered set)."""
    ports: dict[tuple[str, int], None] = {}
    for p in spec.get("ports") or []:
        try:
            ports[(str(p.get("protocol") or "TCP"), int(p["port"]))] = None
        except (KeyError, TypeError, ValueError):
            errors.append(f"port entry {p!r} has no valid port number")
    return ports


def _traffic_policy(spec: Mapping[str, Any]) -> tuple[str, str]:
    """externalTrafficPolicy, and for Local the selector that names its backends."""
    etp = spec.get("externalTrafficPolicy") or "Cluster"
    if etp not in ("Cluster", "Local"):
        etp = "Cluster"
    if etp != "Local":
        return etp, ""
    sel = spec.get("selector") or {}
    return etp, ",".join(f"{k}={v}" for k, v in sorted(sel.items()))


def _current_ips(status: Mapping[str, Any]) -> tuple[str, ...]:
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    return tuple(str(i["ip"]) for i in ingress if isinstance(i, Mapping) and i.get("ip"))
