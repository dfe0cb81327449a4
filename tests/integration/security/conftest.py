"""Fixtures for the least-privilege tests: exalb's identities as the apiserver sees them.

Each test acts with a component's own credentials (its ServiceAccount under the chart's
RBAC and admission policy; for an announcer, a token bound to its Pod on its node) and
asserts what the real kube-apiserver answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.procs import wait_for
from tests.integration.announcer import conftest as announcer_fixtures

# The announcer tests' fixtures: a fresh exalb namespace, the CRDs, a Lab in it.
namespace = announcer_fixtures.namespace
peer_crd = announcer_fixtures.peer_crd
lab = announcer_fixtures.lab

GROUP, VERSION, STATUSES = "exalb.io", "v1alpha1", "bgpsessionstatuses"


@dataclass
class Identity:
    """API clients that authenticate as one ServiceAccount token."""

    api: client.ApiClient
    username: str

    def __post_init__(self) -> None:
        self.core: Any = client.CoreV1Api(self.api)
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.auth: Any = client.AuthenticationV1Api(self.api)

    def create_status(self, namespace: str, name: str, **metadata: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BGPSessionStatus",
            "metadata": {"name": name, **metadata},
            "status": {"node": name, "sessions": 0},
        }
        return dict(
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, STATUSES, body)
        )

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, STATUSES, name, patch
            )
        )


def refusal(call: Callable[[], object]) -> tuple[int, str]:
    """The HTTP status and message of the apiserver's refusal of ``call``."""
    with pytest.raises(client.ApiException) as refused:
        call()
    body = json.loads(refused.value.body)
    return int(refused.value.status), str(body["message"])


def identity(cp: ControlPlane, token: str, namespace: str, sa: str) -> Identity:
    return Identity(cp.api_client(token), f"system:serviceaccount:{namespace}:{sa}")


@pytest.fixture
def announcer(lab: Lab, control_plane: ControlPlane) -> Iterator[Identity]:
    """Node 1's announcer (nodes 1 and 2 exist, no announcer runs), its policy in force."""
    lab.add_node(1, start=False)
    lab.add_node(2, start=False)
    me = identity(control_plane, lab.announcer_token(1), lab.namespace, "exalb-announcer")
    wait_for(
        "the announcer's RBAC grants",
        lambda: granted(lambda: me.core.list_namespaced_secret(lab.bgp_secrets_namespace)),
        15,
    )
    wait_for("the admission policy in force", lambda: _policy_refuses_stray(me, lab), 15)
    yield me
    me.api.close()


def granted(call: Callable[[], object]) -> bool:
    """Whether RBAC lets ``call`` through yet (grants reach the authorizer with a delay)."""
    try:
        call()
    except client.ApiException as exc:
        if exc.status == 403:
            return False
        raise
    return True


def _policy_refuses_stray(me: Identity, lab: Lab) -> bool:
    """A dry-run stray create: refused once the apiserver has loaded the policy."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BGPSessionStatus",
        "metadata": {"name": "policy-probe"},
    }
    try:
        me.custom.create_namespaced_custom_object(
            GROUP, VERSION, lab.namespace, STATUSES, body, dry_run="All"
        )
    except client.ApiException as exc:
        if exc.status != 403:
            raise
        return "ValidatingAdmissionPolicy" in str(exc.body)  # else RBAC, not yet granted
    return False
