"""Applying the project's own YAML (CRDs, RBAC) to the test control plane.

Tests install exactly the files the chart ships, so a passing test proves
the shipped CRD schemas and RBAC rules, not a copy of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, dynamic

from testbed.binaries import ROOT
from testbed.procs import wait_for

CRD_DIR = ROOT / "charts" / "exalb" / "crds"
RBAC_DIR = ROOT / "charts" / "exalb" / "rbac"
CLUSTER_SCOPED = (
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


def load(
    path: Path,
    namespace: str | None = None,
    suffix: str = "",
    bgp_secrets_namespace: str | None = None,
) -> list[dict[str, Any]]:
    """Documents of ``path`` with its placeholders replaced and cluster-scoped names suffixed.

    The placeholders are the ones the chart renders: NAMESPACE and BGP_SECRETS_NS.
    """
    text = path.read_text()
    if namespace:
        text = text.replace("NAMESPACE", namespace)
    if bgp_secrets_namespace:
        text = text.replace("BGP_SECRETS_NS", bgp_secrets_namespace)
    docs = [d for d in yaml.safe_load_all(text) if d]
    if suffix:
        for d in docs:
            if d["kind"] in CLUSTER_SCOPED:
                d["metadata"]["name"] += suffix
            if d["kind"] == "ClusterRoleBinding":
                d["roleRef"]["name"] += suffix
            if d["kind"] == "ValidatingAdmissionPolicyBinding":
                d["spec"]["policyName"] += suffix
    return docs


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
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        docs = load(path)
        apply(api, docs)
        names += [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"]
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
