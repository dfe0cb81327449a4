"""Per-Service BGP attributes (annotations) and the pool's graded and weighted advertisements."""

from __future__ import annotations

from typing import Any

import pytest

from allocator.core.attributes import ServiceAttributes, parse_attributes
from allocator.core.plan import Allocated, assignment_for
from allocator.core.pool import PoolError, parse_pool
from allocator.core.service import parse_service
from exalb.assignments import Advertisement, Degraded, LabelSelector


def service(annotations: dict[str, str], policy: str = "Cluster") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": "web", "uid": "u1", "annotations": annotations},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy},
    }


def test_annotations_set_communities_local_pref_and_med() -> None:
    attrs, errors = parse_attributes(
        {
            "exalb.io/bgp-communities": "65000:1, large:64512:1:2 ,no-export",
            "exalb.io/bgp-local-pref": "300",
            "exalb.io/bgp-med": "0",
        }
    )
    assert errors == ()
    assert attrs == ServiceAttributes(("65000:1", "65535:65281"), ("64512:1:2",), 300, 0)


def test_no_annotation_is_no_attributes() -> None:
    assert parse_attributes({"other": "x"}) == (None, ())


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("exalb.io/bgp-communities", "65000:1, 70000:1", "'70000:1': a community is A:B"),
        ("exalb.io/bgp-communities", "large:1:2", "large:A:B:C"),
        ("exalb.io/bgp-local-pref", "-1", "'-1' is not an integer in 0..4294967295"),
        ("exalb.io/bgp-med", "4294967296", "'4294967296' is not an integer"),
        ("exalb.io/bgp-med", "ten", "'ten'"),
    ],
)
def test_a_bad_annotation_is_named_and_the_others_still_apply(
    name: str, value: str, fragment: str
) -> None:
    good = {"exalb.io/bgp-local-pref": "300"} if name != "exalb.io/bgp-local-pref" else {}
    attrs, errors = parse_attributes({name: value, **good})
    (error,) = errors
    assert error.startswith(f"{name}: ") and fragment in error
    assert attrs == (ServiceAttributes(local_pref=300) if good else None)


def test_service_attributes_apply_over_every_advertisement_and_never_block_allocation() -> None:
    svc = parse_service(
        service({"exalb.io/bgp-communities": "65000:7", "exalb.io/bgp-med": "x"}, policy="Local")
    )
    assert svc.errors == () and svc.attribute_errors  # allocation goes on; the error is reported
    pool = parse_pool(
        "p",
        {
            "addresses": ["198.51.100.0/24"],
            "bgpAdvertisements": [
                {"communities": ["65000:1"], "localPref": 100, "aggregationLength": 24}
            ],
        },
    )
    a = assignment_for(svc, Allocated(("198.51.100.1",), "p"), pool, {})
    (adv,) = a.advertisements
    assert adv.communities == ("65000:1", "65000:7")
    assert (adv.local_pref, adv.med, adv.aggregation_length) == (100, None, 32)


def test_pool_parses_degraded_and_weighted_ecmp() -> None:
    pool = parse_pool(
        "p",
        {
            "addresses": ["198.51.100.0/24"],
            "bgpAdvertisements": [
                {
                    "degraded": {
                        "med": 500,
                        "asPathPrepend": 2,
                        "communities": ["65000:666", "large:1:2:3"],
                        "nodeSelectors": [{"matchLabels": {"role": "standby"}}],
                    },
                    "weightedECMP": {},
                }
            ],
        },
    )
    (adv,) = pool.advertisements
    assert adv == Advertisement(
        degraded=Degraded(
            med=500,
            as_path_prepend=2,
            communities=("65000:666",),
            large_communities=("1:2:3",),
            node_selectors=(LabelSelector((("role", "standby"),)),),
        ),
        mbps_per_endpoint=10,
    )


@pytest.mark.parametrize(
    ("adv", "fragment"),
    [
        ({"degraded": {}}, "degraded sets no attribute"),
        ({"degraded": {"asPathPrepend": 11}}, "asPathPrepend must be 0..10"),
        ({"degraded": {"med": -1}}, "degraded.med must be 0..4294967295"),
        ({"weightedECMP": {"mbpsPerEndpoint": 0}}, "mbpsPerEndpoint must be 1..1000000"),
    ],
)
def test_pool_refuses_bad_grades_and_weights(adv: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PoolError, match=fragment):
        parse_pool("p", {"addresses": ["198.51.100.0/24"], "bgpAdvertisements": [adv]})
