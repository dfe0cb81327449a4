from __future__ import annotations

import pytest

from allocator.core.service import claims, parse_service
from tests.unit.allocator.builders import svc, svc_obj


@pytest.mark.parametrize(
    ("service_type", "service_class", "configured", "claimed"),
    [
        # no class configured: only class-less LoadBalancers (MetalLB's default)
        ("LoadBalancer", None, None, True),
        ("LoadBalancer", "exalb.io/bgp", None, False),
        ("LoadBalancer", "metallb.io/metallb", None, False),
        ("ClusterIP", None, None, False),
        (None, None, None, False),
        # a class configured: that class only, class-less Services are someone else's
        ("LoadBalancer", "example.com/mine", "example.com/mine", True),
        ("LoadBalancer", None, "example.com/mine", False),
        ("LoadBalancer", "example.com/other", "example.com/mine", False),
        ("NodePort", "example.com/mine", "example.com/mine", False),
    ],
)
def test_claims(
    service_type: str | None, service_class: str | None, configured: str | None, claimed: bool
) -> None:
    assert claims(service_type, service_class, configured) is claimed


def test_parse_service_applies_the_class_rule() -> None:
    assert svc("a").ours
    assert not svc("a", lb_class="other.io/lb").ours
    assert not svc("a", svc_type="ClusterIP").ours
    assert parse_service(svc_obj("a", lb_class="mine"), lb_class="mine").ours
    assert not parse_service(svc_obj("a"), lb_class="mine").ours


def test_requested_ips_and_metallb_annotations() -> None:
    s = svc(
        "a",
        annotations={"metallb.io/loadBalancerIPs": "198.51.100.5", "metallb.io/address-pool": "p"},
    )
    assert s.requested_ips == ("198.51.100.5",) and s.requested_pool == "p"
    ours = svc(
        "a", annotations={"exalb.io/address-pool": "mine", "metallb.io/address-pool": "theirs"}
    )
    assert ours.requested_pool == "mine"
    legacy = svc("a", loadBalancerIP="198.51.100.9")
    assert legacy.requested_ips == ("198.51.100.9",) and not legacy.errors


def test_malformed_annotations_become_errors_not_exceptions() -> None:
    assert (
        "is not an IP address"
        in svc("a", annotations={"exalb.io/loadBalancerIPs": "1.2.3"}).errors[0]
    )
    both = svc(
        "a", annotations={"exalb.io/loadBalancerIPs": "198.51.100.1"}, loadBalancerIP="198.51.100.2"
    )
    assert "both" in both.errors[0]
    two_v4 = svc("a", annotations={"exalb.io/loadBalancerIPs": "198.51.100.1,198.51.100.2"})
    assert "one requested IP per address family" in two_v4.errors[0]
    v6_on_v4 = svc("a", annotations={"exalb.io/loadBalancerIPs": "2001:db8::1"})
    assert "family" in v6_on_v4.errors[0]
    assert parse_service({"metadata": {"name": "x"}, "spec": None}).ours is False


def test_local_backend_key_is_the_selector() -> None:
    s = svc("a", etp="Local", selector={"b": "2", "a": "1"})
    assert s.backend_key == "a=1,b=2"
    assert svc("a").backend_key == ""


def test_dual_stack_families() -> None:
    s = svc("a", families=("IPv6", "IPv4"), family_policy="RequireDualStack")
    assert s.families == (6, 4) and s.require_all_families
    p = svc("a", families=("IPv4",), family_policy="PreferDualStack")
    assert p.families == (4, 6) and not p.require_all_families


def test_the_assigned_label_is_read_only_as_true() -> None:
    """The label scopes the announcers' slice watch; anything but "true" is written again."""
    assert parse_service(svc_obj("a", labels={"exalb.io/assigned": "true"})).labelled
    assert not parse_service(svc_obj("a", labels={"exalb.io/assigned": "yes"})).labelled
    assert not parse_service(svc_obj("a")).labelled
