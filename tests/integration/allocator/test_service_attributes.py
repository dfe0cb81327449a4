"""Per-Service BGP attributes from annotations, on the real apiserver: published, or reported."""

from __future__ import annotations

import pytest

from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration


def test_annotations_reach_the_entry_and_a_bad_one_is_reported_on_its_service_only(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("main", "198.51.100.0/29", bgpAdvertisements=[{"communities": ["65000:100"]}])
    start_allocator()
    cluster.service(
        namespace,
        "gold",
        annotations={
            "exalb.io/bgp-communities": "65000:200, large:64512:5:6",
            "exalb.io/bgp-local-pref": "300",
            "exalb.io/bgp-med": "10",
        },
    )
    cluster.service(
        namespace,
        "typo",
        annotations={"exalb.io/bgp-communities": "65000:300", "exalb.io/bgp-med": "ten"},
    )
    cluster.service(namespace, "plain")
    for name in ("gold", "typo", "plain"):
        cluster.wait_ips(namespace, name)  # a bad attribute never holds an allocation back

    message = cluster.wait_event(namespace, "typo", "InvalidBGPAttributes")
    assert message.startswith("exalb.io/bgp-med: 'ten' is not an integer in 0..4294967295")
    keys = {f"{namespace}.{n}" for n in ("gold", "typo", "plain")}
    wait_for("three entries", lambda: keys <= set(cluster.published()), 10)
    entries = cluster.published()
    (gold,) = entries[f"{namespace}.gold"].advertisements
    assert gold.communities == ("65000:100", "65000:200")
    assert gold.large_communities == ("64512:5:6",)
    assert (gold.local_pref, gold.med) == (300, 10)
    (typo,) = entries[f"{namespace}.typo"].advertisements  # the valid annotation still applies
    assert (typo.communities, typo.med) == (("65000:100", "65000:300"), None)
    (plain,) = entries[f"{namespace}.plain"].advertisements
    assert (plain.communities, plain.med) == (("65000:100",), None)
    assert not [r for r, _ in cluster.events(namespace, "gold") if r == "InvalidBGPAttributes"]

    # Fixing the annotation takes effect without touching the IP.
    ip = cluster.ingress(namespace, "typo")
    cluster.core.patch_namespaced_service(
        "typo", namespace, {"metadata": {"annotations": {"exalb.io/bgp-med": "20"}}}
    )
    wait_for(
        "the fixed MED published",
        lambda: cluster.published()[f"{namespace}.typo"].advertisements[0].med == 20,
        10,
    )
    assert cluster.ingress(namespace, "typo") == ip
