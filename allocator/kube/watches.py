"""The informers the allocator reconciles from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from allocator.core.service import PREFIXES
from exalb.assignments import LABEL
from exalb.kube.informer import Informer, Obj, OnChange
from exalb.kube.rest import Client, resource_path

GROUP, VERSION, POOLS = "exalb.io", "v1alpha1", "vippools"


@dataclass
class Watches:
    services: Informer
    namespaces: Informer
    pools: Informer
    configmaps: Informer

    def all(self) -> list[Informer]:
        return [self.services, self.namespaces, self.pools, self.configmaps]

    def start(self) -> None:
        for i in self.all():
            i.start()

    def stop(self) -> None:
        for i in self.all():
            i.stop()

    def wait_synced(self, timeout: float) -> bool:
        return all(i.wait_synced(timeout) for i in self.all())


_SPEC_FIELDS = (
    "type",
    "loadBalancerClass",
    "loadBalancerIP",
    "ports",
    "externalTrafficPolicy",
    "selector",
    "ipFamilies",
    "ipFamilyPolicy",
    "clusterIP",  # the data path check's target (dataPathCheck)
)
_META_FIELDS = ("name", "namespace", "uid", "creationTimestamp", "resourceVersion", "labels")


def service_projection(obj: Obj) -> Obj:
    """The parts of a Service the allocator reads; the rest is dropped from its cache."""
    md = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    meta: Obj = {k: md[k] for k in _META_FIELDS if k in md}
    ann = md.get("annotations") or {}
    meta["annotations"] = {k: v for k, v in ann.items() if k.startswith(PREFIXES)}
    ports = [
        {"port": p.get("port"), "protocol": p.get("protocol")} for p in spec.get("ports") or []
    ]
    projected_spec: Obj = {k: spec[k] for k in _SPEC_FIELDS if k in spec and k != "ports"}
    projected_spec["ports"] = ports
    lb = (obj.get("status") or {}).get("loadBalancer") or {}
    return {"metadata": meta, "spec": projected_spec, "status": {"loadBalancer": lb}}


def make_watches(
    api: Client,
    namespace: str,
    on_change: Callable[[], None],
    on_service: Callable[[str], None] | None = None,
) -> Watches:
    """``on_change`` hears of any change; ``on_service`` also gets the key of a changed Service."""

    def notify(_key: str, _obj: object) -> None:
        on_change()

    def notify_service(key: str, _obj: object) -> None:
        if on_service is not None:
            on_service(key)
        on_change()

    cb: OnChange = notify
    return Watches(
        services=Informer(
            "services",
            api.lister(resource_path("v1", "services")),
            notify_service,
            transform=service_projection,
        ),
        namespaces=Informer("namespaces", api.lister(resource_path("v1", "namespaces")), cb),
        pools=Informer(
            "vippools", api.lister(resource_path(f"{GROUP}/{VERSION}", POOLS, namespace)), cb
        ),
        configmaps=Informer(
            "assignments",
            api.lister(
                resource_path("v1", "configmaps", namespace), label_selector=f"{LABEL}=true"
            ),
            cb,
        ),
    )
