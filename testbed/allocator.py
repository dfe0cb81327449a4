"""Running the real ``exalb-allocator`` process against the testbed, as the chart would.

It runs as the ``exalb-allocator`` ServiceAccount of ``namespace`` with the
chart's RBAC applied, so tests and benchmarks prove those permissions suffice.
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from testbed.binaries import ROOT
from testbed.controlplane import ControlPlane
from testbed.manifests import apply, rbac
from testbed.procs import Proc, free_port, wait_for


@dataclass
class AllocatorProc:
    proc: Proc
    port: int
    identity: str

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample, by exact name and label set (None if absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, rest = head.partition("{")
            got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if metric == name and got == want:
                return float(value)
        return None

    def is_leader(self) -> bool:
        return self.metric("exalb_allocator_is_leader") == 1.0

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def rss_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the process in KiB."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def apply_rbac(api: client.ApiClient, namespace: str, suffix: str = "") -> None:
    apply(api, rbac("allocator", namespace, suffix))


def delete_rbac(api: client.ApiClient, suffix: str) -> None:
    """Remove the cluster-scoped half of :func:`apply_rbac` (the namespaced half goes with it)."""
    rbac = client.RbacAuthorizationV1Api(api)
    for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
        try:
            delete(f"exalb-allocator{suffix}")
        except client.ApiException:
            pass


def start_allocator(
    cp: ControlPlane,
    namespace: str,
    workdir: Path,
    identity: str = "alloc-a",
    extra: tuple[str, ...] = (),
    wait_ready: bool = True,
    log_level: str = "debug",
    code: Path = ROOT,
) -> AllocatorProc:
    """``code``: the source tree to run (another version's, for upgrade tests)."""
    token = cp.service_account_token(namespace, "exalb-allocator")
    kubeconfig = cp.write_kubeconfig(workdir / f"{identity}.kubeconfig", token)
    port = free_port()
    proc = Proc(
        f"allocator-{identity}",
        [
            sys.executable,
            "-m",
            "allocator.main",
            f"--kubeconfig={kubeconfig}",
            f"--namespace={namespace}",
            f"--metrics-bind=127.0.0.1:{port}",
            f"--identity={identity}",
            f"--log-level={log_level}",
            *extra,
        ],
        workdir / f"allocator-{identity}.log",
        cwd=code,
    )
    handle = AllocatorProc(proc, port, identity)
    if wait_ready:
        wait_for(
            f"allocator {identity} ready", handle.ready, 60, interval=0.1, on_timeout=proc.tail
        )
    return handle


def create_pool(
    api: client.ApiClient, namespace: str, name: str, addresses: list[str], **spec: Any
) -> dict[str, Any]:
    """Create a VIPPool (``spec`` holds any further VIPPool fields, by their API names)."""
    body = {
        "apiVersion": "exalb.io/v1alpha1",
        "kind": "VIPPool",
        "metadata": {"name": name},
        "spec": {"addresses": addresses, **spec},
    }
    custom: Any = client.CustomObjectsApi(api)
    return dict(
        custom.create_namespaced_custom_object("exalb.io", "v1alpha1", namespace, "vippools", body)
    )
