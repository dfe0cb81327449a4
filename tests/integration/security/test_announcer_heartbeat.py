"""An announcer renews its own node's heartbeat Lease, and no other Lease.

Node 1's announcer identity (token bound to its Pod on node 1) under the chart's Role and
its ``exalb-announcer-own-heartbeat`` admission policy, against the real apiserver. The
Role grants leases in exalb's namespace, where the allocator's Lease lives too: the policy
is what keeps an announcer from holding another node's heartbeat, or the allocator's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from exalb.heartbeat import lease_name
from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.procs import wait_for
from tests.integration.security.conftest import Identity, identity, refusal

pytestmark = pytest.mark.integration

Write = Callable[[Any, str, dict[str, Any]], object]  # (leases api, namespace, body)


def policy(lab: Lab) -> str:
    name = f"exalb-announcer-own-heartbeat{lab.rbac_suffix}"
    return f"ValidatingAdmissionPolicy '{name}' with binding '{name}' denied request: "


def lease(name: str, holder: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, **metadata},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 40},
    }


def leases(me: Identity) -> Any:
    return client.CoordinationV1Api(me.api)


def in_force(me: Identity, lab: Lab) -> bool:
    """A dry-run create of another node's Lease is refused once the policy is loaded."""
    other = lease_name(lab.node(2).name)
    try:
        leases(me).create_namespaced_lease(lab.namespace, lease(other, other), dry_run="All")
    except client.ApiException as exc:
        if exc.status != 403:
            raise
        return "ValidatingAdmissionPolicy" in str(exc.body)
    return False


@pytest.fixture
def me(announcer: Identity, lab: Lab) -> Identity:
    wait_for("the heartbeat policy in force", lambda: in_force(announcer, lab), 15)
    return announcer


def test_creates_and_renews_its_own_heartbeat_owned_by_its_service_account(
    lab: Lab, me: Identity
) -> None:
    node = lab.node(1).name
    account = client.CoreV1Api(lab.api).read_namespaced_service_account(
        "exalb-announcer", lab.namespace
    )
    owner = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "name": "exalb-announcer",
        "uid": account.metadata.uid,
    }
    body = lease(lease_name(node), node, ownerReferences=[owner])
    created = leases(me).create_namespaced_lease(lab.namespace, body)
    assert [r.name for r in created.metadata.owner_references] == ["exalb-announcer"]
    created.spec.lease_duration_seconds = 3
    renewed = leases(me).replace_namespaced_lease(lease_name(node), lab.namespace, created)
    assert renewed.spec.lease_duration_seconds == 3
    assert renewed.spec.holder_identity == node


FINALIZERS_AND_OWNERS = (
    "exalb-announcer may set no finalizers on its heartbeat Lease, and no owner but its own "
    "ServiceAccount"
)
REFUSED = {
    "another node's heartbeat": (
        lambda lab: lease(lease_name(lab.node(2).name), lab.node(1).name),
        "exalb-announcer of node {me} may write only the Lease named exalb-announcer-{me}, "
        "not exalb-announcer-{other}",
    ),
    "the allocator's Lease": (
        lambda lab: lease("exalb-allocator", lab.node(1).name),
        "exalb-announcer of node {me} may write only the Lease named exalb-announcer-{me}, "
        "not exalb-allocator",
    ),
    "its own heartbeat, held as another node": (
        lambda lab: lease(lease_name(lab.node(1).name), lab.node(2).name),
        "exalb-announcer of node {me} may hold its heartbeat Lease only as {me}",
    ),
    "its own heartbeat, with a finalizer": (
        lambda lab: lease(
            lease_name(lab.node(1).name), lab.node(1).name, finalizers=["example.com/keep"]
        ),
        FINALIZERS_AND_OWNERS,
    ),
    "its own heartbeat, owned by another object": (
        lambda lab: lease(
            lease_name(lab.node(1).name),
            lab.node(1).name,
            ownerReferences=[
                {"apiVersion": "v1", "kind": "ServiceAccount", "name": "default", "uid": "x"}
            ],
        ),
        FINALIZERS_AND_OWNERS,
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_writes_no_other_lease(lab: Lab, me: Identity, case: tuple[Any, str]) -> None:
    body, message = case
    status, said = refusal(lambda: leases(me).create_namespaced_lease(lab.namespace, body(lab)))
    assert status == 403
    expected = message.format(me=lab.node(1).name, other=lab.node(2).name)
    assert said.endswith(policy(lab) + expected), said


def test_takes_over_no_lease_it_did_not_create(lab: Lab, me: Identity) -> None:
    """The allocator's Lease, written by the admin: the announcer may read it, not renew it."""
    admin = client.CoordinationV1Api(lab.api)
    admin.create_namespaced_lease(lab.namespace, lease("exalb-allocator", "allocator-0"))
    current = leases(me).read_namespaced_lease("exalb-allocator", lab.namespace)
    current.spec.holder_identity = lab.node(1).name
    status, said = refusal(
        lambda: leases(me).replace_namespaced_lease("exalb-allocator", lab.namespace, current)
    )
    assert status == 403 and "may write only the Lease named" in said, said


def test_no_lease_outside_exalbs_namespace_and_no_delete(lab: Lab, me: Identity) -> None:
    node = lab.node(1).name
    body = lease(lease_name(node), node)
    status, said = refusal(lambda: leases(me).create_namespaced_lease("default", body))
    assert status == 403 and 'cannot create resource "leases"' in said, said
    leases(me).create_namespaced_lease(lab.namespace, body)
    status, said = refusal(
        lambda: leases(me).delete_namespaced_lease(lease_name(node), lab.namespace)
    )
    assert status == 403 and 'cannot delete resource "leases"' in said, said


def test_a_token_without_node_claim_renews_no_heartbeat(
    lab: Lab, me: Identity, control_plane: ControlPlane
) -> None:
    token = control_plane.service_account_token(lab.namespace, "exalb-announcer")
    unbound = identity(control_plane, token, lab.namespace, "exalb-announcer")
    node = lab.node(1).name
    try:
        status, said = refusal(
            lambda: leases(unbound).create_namespaced_lease(
                lab.namespace, lease(lease_name(node), node)
            )
        )
    finally:
        unbound.api.close()
    assert status == 403
    assert said.endswith(
        policy(lab) + "exalb-announcer renews a heartbeat Lease only with a ServiceAccount "
        "token bound to a Pod on its node: this token carries no "
        "authentication.kubernetes.io/node-name claim"
    ), said
