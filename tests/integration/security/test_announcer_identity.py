"""What an announcer may do, proven by the real apiserver under its own identity.

Node 1's announcer: the ``exalb-announcer`` ServiceAccount, with a token bound to its Pod
on node 1 (as a DaemonSet pod's projected token is), the chart's RBAC and admission
policy. Every refusal is asserted with the apiserver's status code and message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from testbed.controlplane import ControlPlane
from testbed.lab import Lab
from testbed.procs import free_port, wait_for
from tests.integration.security.conftest import (
    GROUP,
    STATUSES,
    VERSION,
    Identity,
    identity,
    refusal,
)

pytestmark = pytest.mark.integration

NODE_CLAIM = "authentication.kubernetes.io/node-name"


def policy(lab: Lab) -> str:
    name = f"exalb-announcer-own-node{lab.rbac_suffix}"
    return f"ValidatingAdmissionPolicy '{name}' with binding '{name}' denied request: "


def node_ref(lab: Lab, i: int, **extra: Any) -> dict[str, Any]:
    node = lab.core.read_node(lab.node(i).name)
    return {"apiVersion": "v1", "kind": "Node", "name": node.metadata.name,
            "uid": node.metadata.uid, **extra}  # fmt: skip


def admin_status(lab: Lab, name: str, **metadata: Any) -> None:
    """A BGPSessionStatus written by the admin (as if by that node's own announcer)."""
    Identity(lab.api, "admin").create_status(lab.namespace, name, **metadata)


def test_the_bound_token_carries_its_node(lab: Lab, announcer: Identity) -> None:
    review = announcer.auth.create_self_subject_review({"apiVersion": "authentication.k8s.io/v1"})
    user = review.status.user_info
    assert user.username == announcer.username
    assert user.extra[NODE_CLAIM] == [lab.node(1).name]


# --- Secrets ---------------------------------------------------------------


def test_reads_the_bgp_secrets_namespace(lab: Lab, announcer: Identity) -> None:
    lab.add_secret("tor-md5", "right-pw")
    secrets = announcer.core.list_namespaced_secret(lab.bgp_secrets_namespace).items
    assert [(s.metadata.name, s.data["password"]) for s in secrets] == [
        ("tor-md5", "cmlnaHQtcHc=")  # base64 of right-pw
    ]


@dataclass(frozen=True)
class SecretRead:
    call: Callable[[Any, Lab], object]
    message: str  # {user} {ns}


SECRET_READS = {
    "get an unrelated Secret in exalb's namespace": SecretRead(
        lambda core, lab: core.read_namespaced_secret("db-password", lab.namespace),
        'secrets "db-password" is forbidden: User "{user}" cannot get resource "secrets" '
        'in API group "" in the namespace "{ns}"',
    ),
    "list Secrets in exalb's namespace": SecretRead(
        lambda core, lab: core.list_namespaced_secret(lab.namespace),
        'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
        'in the namespace "{ns}"',
    ),
    "watch Secrets in exalb's namespace": SecretRead(
        lambda core, lab: core.list_namespaced_secret(lab.namespace, watch=True, timeout_seconds=1),
        'secrets is forbidden: User "{user}" cannot watch resource "secrets" in API group "" '
        'in the namespace "{ns}"',
    ),
    "list Secrets in every namespace": SecretRead(
        lambda core, lab: core.list_secret_for_all_namespaces(),
        'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
        "at the cluster scope",
    ),
}


@pytest.mark.parametrize("case", SECRET_READS.values(), ids=SECRET_READS.keys())
def test_reads_no_other_secret(lab: Lab, announcer: Identity, case: SecretRead) -> None:
    lab.add_secret("tor-md5", "right-pw")
    lab.core.create_namespaced_secret(
        lab.namespace, {"metadata": {"name": "db-password"}, "stringData": {"password": "x"}}
    )
    status, message = refusal(lambda: case.call(announcer.core, lab))
    assert status == 403
    assert message == case.message.format(user=announcer.username, ns=lab.namespace)


# --- its own BGPSessionStatus ------------------------------------------------


def test_writes_its_own_status(lab: Lab, announcer: Identity) -> None:
    me = lab.node(1).name
    created = announcer.create_status(lab.namespace, me, ownerReferences=[node_ref(lab, 1)])
    assert created["metadata"]["ownerReferences"] == [node_ref(lab, 1)]
    patched = announcer.patch_status(lab.namespace, me, {"status": {"sessions": 2}})
    assert patched["status"] == {"node": me, "sessions": 2}


def test_keeps_owners_it_did_not_add(lab: Lab, announcer: Identity) -> None:
    """The writer keeps other owners when it adds its Node (a merge patch sends the list)."""
    me = lab.node(1).name
    other = node_ref(lab, 2)
    admin_status(lab, me, ownerReferences=[other])
    mine = node_ref(lab, 1)
    patched = announcer.patch_status(
        lab.namespace, me, {"metadata": {"ownerReferences": [other, mine]}}
    )
    assert patched["metadata"]["ownerReferences"] == [other, mine]


@dataclass(frozen=True)
class StatusWrite:
    setup: Callable[[Lab], object]  # as the admin
    write: Callable[[Identity, Lab], object]  # as node 1's announcer
    message: str  # after the policy's prefix; {me} {other}: node names


def _own(lab: Lab) -> None:
    admin_status(lab, lab.node(1).name)


def _other(lab: Lab) -> None:
    admin_status(lab, lab.node(2).name)


def _nothing(lab: Lab) -> None:
    return None


STATUS_WRITES = {
    "patch another node's status": StatusWrite(
        _other,
        lambda me, lab: me.patch_status(
            lab.namespace, lab.node(2).name, {"status": {"sessions": 9}}
        ),
        "exalb-announcer of node {me} may write only the BGPSessionStatus named {me}, not {other}",
    ),
    "create another node's status": StatusWrite(
        _nothing,
        lambda me, lab: me.create_status(lab.namespace, lab.node(2).name),
        "exalb-announcer of node {me} may write only the BGPSessionStatus named {me}, not {other}",
    ),
    "create a stray status for no node": StatusWrite(
        _nothing,
        lambda me, lab: me.create_status(lab.namespace, "ghost"),
        "exalb-announcer of node {me} may write only the BGPSessionStatus named {me}, not ghost",
    ),
    "claim another node in its own status": StatusWrite(
        _own,
        lambda me, lab: me.patch_status(
            lab.namespace, lab.node(1).name, {"status": {"node": lab.node(2).name}}
        ),
        "exalb-announcer of node {me} may not set status.node to {other}",
    ),
    "add a finalizer to its own status": StatusWrite(
        _own,
        lambda me, lab: me.patch_status(
            lab.namespace, lab.node(1).name, {"metadata": {"finalizers": ["example.com/keep"]}}
        ),
        "exalb-announcer may not add or remove finalizers",
    ),
    "create its own status with a finalizer": StatusWrite(
        _nothing,
        lambda me, lab: me.create_status(
            lab.namespace, lab.node(1).name, finalizers=["example.com/keep"]
        ),
        "exalb-announcer may not add or remove finalizers",
    ),
    "point its own status's owner at another Node": StatusWrite(
        _own,
        lambda me, lab: me.patch_status(
            lab.namespace, lab.node(1).name, {"metadata": {"ownerReferences": [node_ref(lab, 2)]}}
        ),
        "exalb-announcer of node {me} may add only an owner reference to its own Node "
        "(v1 Node {me}, without blockOwnerDeletion)",
    ),
    "make its Node's deletion wait on its status": StatusWrite(
        _own,
        lambda me, lab: me.patch_status(
            lab.namespace,
            lab.node(1).name,
            {"metadata": {"ownerReferences": [node_ref(lab, 1, blockOwnerDeletion=True)]}},
        ),
        "exalb-announcer of node {me} may add only an owner reference to its own Node "
        "(v1 Node {me}, without blockOwnerDeletion)",
    ),
}


@pytest.mark.parametrize("case", STATUS_WRITES.values(), ids=STATUS_WRITES.keys())
def test_writes_no_other_status(lab: Lab, announcer: Identity, case: StatusWrite) -> None:
    case.setup(lab)
    status, message = refusal(lambda: case.write(announcer, lab))
    assert status == 403
    expected = case.message.format(me=lab.node(1).name, other=lab.node(2).name)
    assert message.endswith(policy(lab) + expected), message


def test_deletes_no_status(lab: Lab, announcer: Identity) -> None:
    me = lab.node(1).name
    _own(lab)
    status, message = refusal(
        lambda: announcer.custom.delete_namespaced_custom_object(
            GROUP, VERSION, lab.namespace, STATUSES, me
        )
    )
    assert status == 403
    assert message == (
        f'{STATUSES}.{GROUP} "{me}" is forbidden: User "{announcer.username}" cannot delete '
        f'resource "{STATUSES}" in API group "{GROUP}" in the namespace "{lab.namespace}"'
    )


def test_a_token_without_node_claim_writes_no_status(
    lab: Lab, announcer: Identity, control_plane: ControlPlane
) -> None:
    """Not bound to a Pod on a node: nothing to compare with, so no status write passes."""
    me = lab.node(1).name
    token = control_plane.service_account_token(lab.namespace, "exalb-announcer")
    unbound = identity(control_plane, token, lab.namespace, "exalb-announcer")
    try:
        review = unbound.auth.create_self_subject_review({"apiVersion": "authentication.k8s.io/v1"})
        assert NODE_CLAIM not in (review.status.user_info.extra or {})
        expected = policy(lab) + (
            "exalb-announcer writes a BGPSessionStatus only with a ServiceAccount token bound "
            "to a Pod on its node: this token carries no authentication.kubernetes.io/node-name "
            "claim"
        )
        status, message = refusal(lambda: unbound.create_status(lab.namespace, me))
        assert status == 403 and message.endswith(expected), message
        _own(lab)
        status, message = refusal(lambda: unbound.patch_status(lab.namespace, me, {"status": {}}))
        assert status == 403 and message.endswith(expected), message
        # Reading is RBAC's business alone, unchanged.
        got = unbound.custom.get_namespaced_custom_object(
            GROUP, VERSION, lab.namespace, STATUSES, me
        )
        assert got["metadata"]["name"] == me
    finally:
        unbound.api.close()


# --- the running announcer, under exactly these rules -------------------------


def test_the_announcer_reads_its_peers_secret_and_writes_its_status(lab: Lab) -> None:
    """A real announcer: the Secret in the BGP secrets namespace is used, one elsewhere is not."""
    lab.add_secret("tor-md5", "right-pw")
    lab.add_secret("tor-b-md5", "other-pw", namespace=lab.namespace)
    closed_port = free_port(lab.router_ip)  # nothing listens: the sessions only try
    for name in ("tor", "tor-b"):
        lab.add_peer(
            name,
            None,
            peerASN=64512,
            peerAddress=lab.router_ip,
            peerPort=closed_port,
            passwordSecret={"name": f"{name}-md5"},
        )
    node = lab.add_node(1, extra_args=["--status-interval", "0.3"])

    def problems() -> dict[str, float]:
        out = {}
        for line in lab.metrics(1).splitlines():
            if line.startswith("exalb_announcer_peer_problem{"):
                peer = line.split('peer="', 1)[1].split('"', 1)[0]
                out[peer] = float(line.rsplit(" ", 1)[1])
        return out

    wait_for("both peers judged", lambda: problems() == {"tor": 0.0, "tor-b": 1.0}, 30)
    wait_for("its status written", lambda: lab.session_status(1) is not None, 30)
    status = lab.session_status(1)
    assert status is not None and status["node"] == node.name
    assert node.proc is not None
    log = node.proc.log.read_text()
    assert (
        f"passwordSecret 'tor-b-md5' is missing from namespace '{lab.bgp_secrets_namespace}'" in log
    )
    assert "right-pw" not in log and "other-pw" not in log
    assert "status write failed" not in log


def test_the_crd_refuses_a_password_secret_in_another_namespace(lab: Lab) -> None:
    status, message = refusal(
        lambda: lab.add_peer(
            "tor",
            None,
            peerASN=64512,
            peerAddress=lab.router_ip,
            passwordSecret={"name": "tor-md5", "namespace": "metallb-system"},
        )
    )
    assert status == 422
    assert message == (
        'BGPPeer.exalb.io "tor" is invalid: spec.passwordSecret: Invalid value: '
        "passwordSecret.namespace is not supported: put the Secret in exalb's BGP secrets "
        "namespace (chart value bgpSecretsNamespace) and give only its name"
    )
    with pytest.raises(client.ApiException) as missing:
        lab.custom.get_namespaced_custom_object(GROUP, VERSION, lab.namespace, "bgppeers", "tor")
    assert missing.value.status == 404
