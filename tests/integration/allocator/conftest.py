"""Fixtures for allocator integration tests: CRDs, RBAC-bound allocator processes, helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from exalb.assignments import LABEL, Assignment, read_shards
from testbed.allocator import AllocatorProc, apply_rbac, create_pool, delete_rbac
from testbed.allocator import start_allocator as start_allocator_proc
from testbed.controlplane import ControlPlane
from testbed.manifests import install_crds
from testbed.procs import wait_for

GROUP, VERSION = "exalb.io", "v1alpha1"


@pytest.fixture(scope="session")
def crds(kube: client.ApiClient) -> list[str]:
    return install_crds(kube)


@dataclass
class Cluster:
    """Thin helpers over the real API for allocator tests."""

    api: client.ApiClient
    exalb_ns: str
    core: client.CoreV1Api = field(init=False)
    custom: client.CustomObjectsApi = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    # pools
    def pool(self, name: str, *addresses: str, **spec: Any) -> dict[str, Any]:
        return create_pool(self.api, self.exalb_ns, name, list(addresses), **spec)

    def patch_pool(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.exalb_ns, "vippools", name, {"spec": spec}
        )

    def pool_status(self, name: str) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.exalb_ns, "vippools", name
        )
        return dict(obj.get("status") or {})

    def condition(self, pool: str, type_: str) -> dict[str, Any] | None:
        for c in self.pool_status(pool).get("conditions", []):
            if c["type"] == type_:
                return dict(c)
        return None

    # services
    def service(
        self,
        ns: str,
        name: str,
        ports: tuple[int, ...] = (80,),
        annotations: dict[str, str] | None = None,
        etp: str = "Cluster",
        labels: dict[str, str] | None = None,
        lb_class: str | None = None,
        **spec: Any,
    ) -> None:
        body: dict[str, Any] = {
            "metadata": {"name": name, "annotations": annotations or {}, "labels": labels or {}},
            "spec": {
                "type": "LoadBalancer",
                "ports": [{"port": p, "protocol": "TCP", "name": f"p{p}"} for p in ports],
                "externalTrafficPolicy": etp,
                "selector": {"app": name},
                **spec,
            },
        }
        if lb_class:
            body["spec"]["loadBalancerClass"] = lb_class
        self.core.create_namespaced_service(ns, body)

    def ingress(self, ns: str, name: str) -> list[str]:
        s = self.core.read_namespaced_service_status(name, ns)
        lb = s.status.load_balancer if s.status else None
        return [i.ip for i in (lb.ingress or [])] if lb else []

    def annotations(self, ns: str, name: str) -> dict[str, str]:
        return dict(self.core.read_namespaced_service(name, ns).metadata.annotations or {})

    def wait_ips(self, ns: str, name: str, timeout: float = 15) -> list[str]:
        wait_for(
            f"{ns}/{name} to get an IP",
            lambda: bool(self.ingress(ns, name)),
            timeout,
            on_timeout=lambda: f"events: {self.events(ns, name)}",
        )
        return self.ingress(ns, name)

    def events(self, ns: str, name: str) -> list[tuple[str, str]]:
        evs = self.core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}")
        return [(e.reason, e.message) for e in evs.items]

    def wait_event(
        self, ns: str, name: str, reason: str, contains: str = "", timeout: float = 15
    ) -> str:
        found: list[str] = []

        def check() -> bool:
            found[:] = [m for r, m in self.events(ns, name) if r == reason and contains in m]
            return bool(found)

        wait_for(
            f"event {reason} ~{contains!r} on {ns}/{name}",
            check,
            timeout,
            on_timeout=lambda: f"events: {self.events(ns, name)}",
        )
        return found[0]

    def published(self) -> dict[str, Assignment]:
        cms = self.core.list_namespaced_config_map(self.exalb_ns, label_selector=f"{LABEL}=true")
        return read_shards([cm.data or {} for cm in cms.items]).entries


@pytest.fixture
def exalb_ns(namespace: str, crds: list[str], kube: client.ApiClient) -> Iterator[str]:
    """This test's exalb namespace, with the chart's allocator RBAC applied to it."""
    suffix = f"-{namespace}"
    apply_rbac(kube, namespace, suffix)
    yield namespace
    delete_rbac(kube, suffix)


@pytest.fixture
def cluster(kube: client.ApiClient, exalb_ns: str) -> Cluster:
    return Cluster(kube, exalb_ns)


StartAllocator = Callable[..., AllocatorProc]


@pytest.fixture
def start_allocator(
    control_plane: ControlPlane, exalb_ns: str, tmp_path: Path
) -> Iterator[StartAllocator]:
    procs: list[AllocatorProc] = []

    def start(identity: str = "alloc-a", wait_ready: bool = True, *extra: str) -> AllocatorProc:
        handle = start_allocator_proc(
            control_plane, exalb_ns, tmp_path, identity, extra, wait_ready
        )
        procs.append(handle)
        return handle

    yield start
    for p in procs:
        p.proc.stop()


def log_lines(p: AllocatorProc) -> list[dict[str, Any]]:
    out = []
    for line in p.proc.log.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
