"""The control plane fixture is a real kube-apiserver with RBAC: prove it."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from testbed.controlplane import ControlPlane

pytestmark = pytest.mark.integration

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.exalb.io"},
    "spec": {
        "group": "smoke.exalb.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.size <= 10", "message": "size must be <= 10"}
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_version_is_the_pinned_kubernetes(kube: client.ApiClient) -> None:
    info = client.VersionApi(kube).get_code()
    assert info.git_version == "v1.37.2"


def test_crd_and_custom_object_round_trip(kube: client.ApiClient, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(kube)
    try:
        ext.create_custom_resource_definition(CRD)
    except client.ApiException as exc:
        assert exc.status == 409
    custom = client.CustomObjectsApi(kube)

    def create(size: int) -> dict[str, object]:
        body = {
            "apiVersion": "smoke.exalb.io/v1",
            "kind": "Widget",
            "metadata": {"name": f"w{size}"},
            "spec": {"size": size},
        }
        return custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
            "smoke.exalb.io", "v1", namespace, "widgets", body
        )

    # The CRD is established asynchronously; the first create may 404 briefly.
    from testbed.procs import wait_for

    wait_for("widget CRD established", lambda: bool(create(3)), timeout=20, interval=0.2)
    got = custom.get_namespaced_custom_object("smoke.exalb.io", "v1", namespace, "widgets", "w3")
    assert got["spec"] == {"size": 3}

    with pytest.raises(client.ApiException) as bad:
        create(11)  # rejected by the CEL rule, by the real apiserver
    assert bad.value.status == 422
    causes = json.loads(bad.value.body)["details"]["causes"]
    assert any("size must be <= 10" in c["message"] for c in causes)


def test_service_round_trip_and_status_subresource(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(
            type="LoadBalancer", ports=[client.V1ServicePort(port=80, protocol="TCP")]
        ),
    )
    core.create_namespaced_service(namespace, svc)
    core.patch_namespaced_service_status(
        "web", namespace, {"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}}
    )
    got = core.read_namespaced_service("web", namespace)
    assert got.spec.type == "LoadBalancer"
    assert got.spec.cluster_ip.startswith("198.19.")
    assert got.status.load_balancer.ingress[0].ip == "198.51.100.7"


def test_rbac_denies_and_allows_a_service_account(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str
) -> None:
    token = control_plane.service_account_token(namespace, "reader")
    with control_plane.api_client(token) as sa_api:
        core = client.CoreV1Api(sa_api)
        with pytest.raises(client.ApiException) as denied:
            core.list_namespaced_service(namespace)
        assert denied.value.status == 403
        assert "system:serviceaccount:" + namespace + ":reader" in str(denied.value.body)

        rbac = client.RbacAuthorizationV1Api(kube)
        rbac.create_namespaced_role(
            namespace,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="svc-reader"),
                rules=[
                    client.V1PolicyRule(api_groups=[""], resources=["services"], verbs=["list"])
                ],
            ),
        )
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="svc-reader"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="Role", name="svc-reader"
                ),
                subjects=[
                    client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
                ],
            ),
        )
        from testbed.procs import wait_for

        wait_for(
            "RBAC grant to take effect",
            lambda: core.list_namespaced_service(namespace) is not None,
            timeout=10,
        )
        with pytest.raises(client.ApiException) as still_denied:
            core.delete_collection_namespaced_service(namespace)
        assert still_denied.value.status == 403
