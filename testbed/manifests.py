"""Applying the chart's own objects (CRDs, RBAC, admission policy) to the test control plane.

They come from ``helm template`` of ``charts/exalb``, the same rendering ``helm install``
applies, so a passing test proves the shipped CRD schemas and RBAC rules, not a copy.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, dynamic

from testbed.binaries import ROOT, find
from testbed.procs import wait_for

CHART = ROOT / "charts" / "exalb"
RELEASE = "exalb"
COMPONENT = "app.kubernetes.io/component"
CLUSTER_SCOPED = (
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


@functools.cache
def kube_version() -> str:
    """The test control plane's version, for ``helm template --kube-version``: helm built from
    source assumes v1.20, which the chart's kubeVersion constraint refuses."""
    out = subprocess.run(
        [find("kube-apiserver"), "--version"], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[-1]  # "Kubernetes v1.37.2"


def render(
    template: str, namespace: str = "exalb-system", values: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The objects of one chart template (``templates/rbac.yaml``...), as ``helm install``
    into ``namespace`` would create them."""
    argv = [find("helm"), "template", RELEASE, str(CHART), "--namespace", namespace]
    argv += ["--kube-version", kube_version(), "--show-only", template]
    argv += [f"--set={k}={v}" for k, v in (values or {}).items()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def rbac(
    component: str, namespace: str, suffix: str = "", bgp_secrets_namespace: str | None = None
) -> list[dict[str, Any]]:
    """The chart's RBAC of ``component``: what it renders from rbac/<component>*.yaml (the
    announcer's includes its admission policy) for ``namespace``, with cluster-scoped names
    suffixed so that tests in parallel namespaces never share them."""
    values = {"bgpSecretsNamespace": bgp_secrets_namespace} if bgp_secrets_namespace else {}
    docs = [
        d
        for d in render("templates/rbac.yaml", namespace, values)
        if d["metadata"]["labels"][COMPONENT].split("-")[0] == component
    ]
    if suffix:
        for d in docs:
            if d["kind"] in CLUSTER_SCOPED:
                d["metadata"]["name"] += suffix
            if d["kind"] == "ClusterRoleBinding":
                d["roleRef"]["name"] += suffix
            if d["kind"] == "ValidatingAdmissionPolicyBinding":
                d["spec"]["policyName"] += suffix
    return docs


def load(path: Path) -> list[dict[str, Any]]:
    """The documents of a YAML file (test fixtures such as MetalLB's CRDs)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def apply(api: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    """Create each object, or replace it if it exists."""
    dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
    for d in docs:
        res = dyn.resources.get(api_version=d["apiVersion"], kind=d["kind"])
        ns = d["metadata"].get("namespace")
        try:
            res.create(body=d, namespace=ns)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            current = res.get(name=d["metadata"]["name"], namespace=ns)
            d["metadata"]["resourceVersion"] = current.metadata.resourceVersion
            res.replace(body=d, namespace=ns)


def delete(api: client.ApiClient, docs: list[dict[str, Any]]) -> None:
    """Delete each object that exists."""
    dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
    for d in docs:
        res = dyn.resources.get(api_version=d["apiVersion"], kind=d["kind"])
        try:
            res.delete(name=d["metadata"]["name"], namespace=d["metadata"].get("namespace"))
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def install_crds(api: client.ApiClient) -> list[str]:
    """Install every CRD the chart ships and wait until the API serves them."""
    docs = render("templates/crds.yaml")
    apply(api, docs)
    names = [d["metadata"]["name"] for d in docs]
    ext = client.ApiextensionsV1Api(api)

    def established() -> bool:
        for n in names:
            status = ext.read_custom_resource_definition(n).status
            conds = (status.conditions if status else None) or []
            if not any(c.type == "Established" and c.status == "True" for c in conds):
                return False
        return True

    wait_for(f"CRDs established: {names}", established, timeout=30, interval=0.2)
    return names
