"""What the allocator must not do, refused by the real apiserver under its own identity.

The ``exalb-allocator`` ServiceAccount with the chart's RBAC: it never needs a Secret,
and the session status objects belong to the announcers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from testbed.allocator import apply_rbac
from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.manifests import CLUSTER_SCOPED, delete, rbac
from testbed.procs import wait_for
from tests.integration.security.conftest import (
    GROUP,
    STATUSES,
    Identity,
    granted,
    identity,
    refusal,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def allocator(lab: Lab, control_plane: ControlPlane) -> Iterator[Identity]:
    """The allocator's identity in the lab's namespace; a BGP Secret and a status exist."""
    apply_rbac(lab.api, lab.namespace, lab.rbac_suffix)
    lab.add_node(1, start=False)
    lab.add_secret("tor-md5", "right-pw")
    lab.core.create_namespaced_secret(
        lab.namespace, {"metadata": {"name": "db-password"}, "stringData": {"password": "x"}}
    )
    Identity(lab.api, "admin").create_status(lab.namespace, lab.node(1).name)
    token = control_plane.service_account_token(lab.namespace, "exalb-allocator")
    me = identity(control_plane, token, lab.namespace, "exalb-allocator")
    wait_for(
        "the allocator's RBAC grants",
        lambda: granted(lambda: me.core.list_namespaced_config_map(lab.namespace)),
        15,
    )
    yield me
    me.api.close()
    docs = rbac("allocator", lab.namespace, lab.rbac_suffix)
    delete(lab.api, [d for d in docs if d["kind"] in CLUSTER_SCOPED])


@dataclass(frozen=True)
class Refused:
    call: Callable[[Identity, Lab], object]
    message: str  # {user}, {ns}, {node}


REFUSED = {
    "get a Secret in exalb's namespace": Refused(
        lambda me, lab: me.core.read_namespaced_secret("db-password", lab.namespace),
        'secrets "db-password" is forbidden: User "{user}" cannot get resource "secrets" '
        'in API group "" in the namespace "{ns}"',
    ),
    "list Secrets in exalb's namespace": Refused(
        lambda me, lab: me.core.list_namespaced_secret(lab.namespace),
        'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
        'in the namespace "{ns}"',
    ),
    "list the BGP password Secrets": Refused(
        lambda me, lab: me.core.list_namespaced_secret(lab.bgp_secrets_namespace),
        'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
        'in the namespace "{ns}-bgp-secrets"',
    ),
    "get a ServiceAccount other than its own": Refused(
        lambda me, lab: me.core.read_namespaced_service_account("default", lab.namespace),
        'serviceaccounts "default" is forbidden: User "{user}" cannot get resource '
        '"serviceaccounts" in API group "" in the namespace "{ns}"',
    ),
    "create a BGPSessionStatus": Refused(
        lambda me, lab: me.create_status(lab.namespace, "forged"),
        f'{STATUSES}.{GROUP} is forbidden: User "{{user}}" cannot create resource "{STATUSES}" '
        f'in API group "{GROUP}" in the namespace "{{ns}}"',
    ),
    "patch a node's BGPSessionStatus": Refused(
        lambda me, lab: me.patch_status(lab.namespace, lab.node(1).name, {"status": {}}),
        f'{STATUSES}.{GROUP} "{{node}}" is forbidden: User "{{user}}" cannot patch resource '
        f'"{STATUSES}" in API group "{GROUP}" in the namespace "{{ns}}"',
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_the_allocator_is_refused(lab: Lab, allocator: Identity, case: Refused) -> None:
    status, message = refusal(lambda: case.call(allocator, lab))
    assert status == 403
    assert message == case.message.format(
        user=allocator.username, ns=lab.namespace, node=lab.node(1).name
    )


def test_the_allocator_reads_its_own_account_for_the_uid_its_objects_are_owned_by(
    lab: Lab, allocator: Identity
) -> None:
    account = allocator.core.read_namespaced_service_account("exalb-allocator", lab.namespace)
    assert account.metadata.uid
