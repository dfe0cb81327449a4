"""Small builders for Service objects as the API returns them (plain dicts)."""

from __future__ import annotations

from typing import Any

from allocator.core.service import ServiceInfo, parse_service


def svc_obj(
    name: str,
    ns: str = "default",
    created: str = "2026-01-01T00:00:00Z",
    ports: tuple[int, ...] = (80,),
    annotations: dict[str, str] | None = None,
    ingress: tuple[str, ...] = (),
    pool: str | None = None,
    etp: str = "Cluster",
    selector: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    lb_class: str | None = None,
    svc_type: str = "LoadBalancer",
    families: tuple[str, ...] = ("IPv4",),
    family_policy: str = "SingleStack",
    **spec: Any,
) -> dict[str, Any]:
    ann = dict(annotations or {})
    if pool:
        ann["exalb.io/ip-allocated-from-pool"] = pool
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{ns}-{name}",
            "creationTimestamp": created,
            "annotations": ann,
            "labels": labels or {},
        },
        "spec": {
            "type": svc_type,
            "ports": [{"port": p, "protocol": "TCP"} for p in ports],
            "externalTrafficPolicy": etp,
            "selector": selector or {"app": name},
            "ipFamilies": list(families),
            "ipFamilyPolicy": family_policy,
            **spec,
        },
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]}},
    }
    if lb_class:
        obj["spec"]["loadBalancerClass"] = lb_class
    return obj


def svc(name: str, **kw: Any) -> ServiceInfo:
    return parse_service(svc_obj(name, **kw))
