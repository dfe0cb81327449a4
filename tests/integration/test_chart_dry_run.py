"""The chart's rendering, in each allocator mode, is accepted by the real API server.

`helm lint` checks templates, not the API: a port name over 15 characters, a misspelt probe
field or a bad securityContext only fails on a cluster. Here every rendered object goes
through `kubectl apply --dry-run=server --validate=strict` (schema, strict field
validation, admission, nothing stored) against the test control plane.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from kubernetes import client

from testbed.binaries import find
from testbed.controlplane import ControlPlane
from testbed.manifests import CHART, install_crds, kube_version
from tests.conftest import fresh_namespace

pytestmark = pytest.mark.integration


@pytest.fixture
def chart_namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """The release namespace, and (really created: a dry run stores nothing, and the Role in
    it needs it) the BGP secrets namespace the chart would create beside it."""
    core = client.CoreV1Api(kube)
    for name in fresh_namespace(kube, request, wait_deleted=False):
        secrets = f"{name}-bgp-secrets"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=secrets)))
        yield name
        core.delete_namespace(secrets)


@pytest.mark.parametrize("mode", ["sidecar", "deployment"])
def test_rendered_chart_passes_server_side_validation(
    mode: str, control_plane: ControlPlane, kube: client.ApiClient, chart_namespace: str
) -> None:
    install_crds(kube)
    helm = [find("helm"), "template", "exalb", str(CHART), "--namespace", chart_namespace]
    rendered = subprocess.run(
        [*helm, "--kube-version", kube_version(), "--set", f"allocator.mode={mode}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    kubectl = [find("kubectl"), "--kubeconfig", str(control_plane.admin_kubeconfig), "apply"]
    applied = subprocess.run(
        [*kubectl, "--dry-run=server", "--validate=strict", "-f", "-"],
        input=rendered,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    kinds = {line.split("/")[0].split(".")[0] for line in applied.stdout.splitlines()}
    workload = "deployment" if mode == "deployment" else "daemonset"
    assert {"daemonset", workload, "clusterrole", "serviceaccount"} <= kinds, applied.stdout
