"""The allocator caches a projection of each Service; it must keep everything the core reads."""

from __future__ import annotations

from allocator.core.service import parse_service
from allocator.kube.watches import service_projection
from tests.unit.allocator.builders import svc_obj


def test_projection_loses_nothing_the_core_reads() -> None:
    objs = [
        svc_obj("a"),
        svc_obj(
            "b",
            annotations={
                "exalb.io/loadBalancerIPs": "198.51.100.1",
                "metallb.io/allow-shared-ip": "k",
                "other.io/x": "y",
            },
            ingress=("198.51.100.1",),
            pool="p",
            etp="Local",
            labels={"tier": "gold"},
            lb_class="example.com/other",
            families=("IPv4", "IPv6"),
            family_policy="PreferDualStack",
            loadBalancerIP="198.51.100.1",
        ),
    ]
    for obj in objs:
        obj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
        obj["metadata"]["resourceVersion"] = "42"
        projected = service_projection(obj)
        assert parse_service(projected) == parse_service(obj)
        assert "managedFields" not in projected["metadata"]
        assert "other.io/x" not in projected["metadata"]["annotations"]
        assert projected["metadata"]["resourceVersion"] == "42"
