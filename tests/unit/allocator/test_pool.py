from __future__ import annotations

from typing import Any

import pytest

from allocator.core.communities import CommunityError, split
from allocator.core.pool import PoolError, parse_pool
from exalb.assignments import LabelSelector


def spec(**kw: Any) -> dict[str, Any]:
    return {"addresses": ["198.51.100.0/24"], **kw}


def test_defaults_match_metallb() -> None:
    p = parse_pool("p", spec())
    assert p.auto_assign and not p.avoid_buggy_ips and p.priority == 0
    assert p.capacity(4) == 256 and p.families == {4}
    (adv,) = p.advertisements
    assert adv.aggregation_length == 32 and adv.peers == () and adv.communities == ()


def test_advertisement_fields_are_parsed() -> None:
    p = parse_pool(
        "p",
        spec(
            bgpAdvertisements=[
                {
                    "communities": ["65000:100", "large:64512:1:2", "no-export"],
                    "localPref": 200,
                    "aggregationLength": 30,
                    "peers": ["tor-b", "tor-a"],
                    "nodeSelectors": [{"matchLabels": {"rack": "r1"}}],
                }
            ]
        ),
    )
    (adv,) = p.advertisements
    assert adv.communities == ("65000:100", "65535:65281")
    assert adv.large_communities == ("64512:1:2",)
    assert adv.local_pref == 200 and adv.aggregation_length == 30
    assert adv.peers == ("tor-a", "tor-b")
    assert adv.node_selectors == (LabelSelector((("rack", "r1"),)),)


@pytest.mark.parametrize(
    ("bad", "reason", "fragment"),
    [
        ({"addresses": ["nope"]}, "InvalidAddresses", "not a CIDR"),
        ({"addresses": "198.51.100.0/24"}, "InvalidAddresses", "list of strings"),
        (spec(bgpAdvertisements=[{"aggregationLength": 16}]), "Invalid", "shorter than the pool"),
        (spec(bgpAdvertisements=[{"communities": ["70000:1"]}]), "Invalid", "0..65535"),
        (spec(serviceAllocation={"namespaces": ["a", "a"]}), "Invalid", "duplicates"),
        (spec(serviceAllocation={"priority": -1}), "Invalid", "non-negative"),
        (
            spec(
                serviceAllocation={
                    "serviceSelectors": [{"matchExpressions": [{"key": "a", "operator": "Near"}]}]
                }
            ),
            "Invalid",
            "unknown operator",
        ),
    ],
)
def test_invalid_specs_give_precise_reasons(
    bad: dict[str, Any], reason: str, fragment: str
) -> None:
    with pytest.raises(PoolError, match=fragment) as exc:
        parse_pool("p", bad)
    assert exc.value.reason == reason


def test_service_allocation_rules() -> None:
    p = parse_pool(
        "p",
        spec(
            serviceAllocation={
                "namespaces": ["team-a"],
                "namespaceSelectors": [{"matchLabels": {"tier": "prod"}}],
                "serviceSelectors": [
                    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}
                ],
            }
        ),
    )
    assert p.allows("team-a", {}, {"app": "web"})
    assert p.allows("other", {"tier": "prod"}, {"app": "web"})
    assert not p.allows("other", {"tier": "dev"}, {"app": "web"})
    assert not p.allows("team-a", {}, {"app": "db"})


def test_communities_syntax() -> None:
    assert split(["65000:1", "65000:1", "graceful-shutdown"]) == (("65000:1", "65535:0"), ())
    with pytest.raises(CommunityError):
        split(["large:1:2"])
