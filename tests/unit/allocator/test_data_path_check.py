"""``dataPathCheck`` from the pool to the published entry: validated, resolved per Service."""

from __future__ import annotations

from typing import Any

import pytest

from allocator.core.plan import Allocated, assignment_for
from allocator.core.pool import PoolError, parse_pool
from allocator.core.service import parse_service
from allocator.kube.watches import service_projection
from exalb.assignments import DataPathCheck, DataPathTarget, decode, encode

POOL = {"addresses": ["198.51.100.0/24"]}


def service(ports: list[dict[str, Any]], cluster_ip: str = "198.19.0.12") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": "web", "uid": "u1"},
        "spec": {"type": "LoadBalancer", "clusterIP": cluster_ip, "ports": ports},
    }


def published(check: dict[str, Any], svc: dict[str, Any]) -> DataPathTarget | None:
    pool = parse_pool("p", {**POOL, "bgpAdvertisements": [{"dataPathCheck": check}]})
    # Through the allocator's informer projection, as it reads Services.
    info = parse_service(service_projection(svc))
    a = assignment_for(info, Allocated(("198.51.100.1",), "p"), pool, {})
    assert decode(a.key, encode(a)) == a  # the contract carries it unchanged
    return a.data_path


def test_the_pool_field_parses() -> None:
    pool = parse_pool("p", {**POOL, "bgpAdvertisements": [{"dataPathCheck": {"port": 8080}}, {}]})
    assert [a.data_path_check for a in pool.advertisements] == [DataPathCheck(8080), None]


@pytest.mark.parametrize(
    ("check", "fragment"),
    [
        ("yes", r"bgpAdvertisements\[0\].dataPathCheck must be an object"),
        ({"port": 0}, r"bgpAdvertisements\[0\].dataPathCheck.port must be 1..65535, not 0"),
        ({"port": "http"}, r"dataPathCheck.port must be 1..65535, not 'http'"),
        ({"port": True}, r"dataPathCheck.port must be 1..65535, not True"),
    ],
)
def test_bad_values_are_refused_precisely(check: Any, fragment: str) -> None:
    with pytest.raises(PoolError, match=fragment):
        parse_pool("p", {**POOL, "bgpAdvertisements": [{"dataPathCheck": check}]})


def test_the_first_tcp_port_unless_the_advertisement_names_one() -> None:
    ports = [{"port": 53, "protocol": "UDP"}, {"port": 80}, {"port": 443, "protocol": "TCP"}]
    assert published({}, service(ports)) == DataPathTarget("198.19.0.12", 80)
    assert published({"port": 443}, service(ports)) == DataPathTarget("198.19.0.12", 443)


@pytest.mark.parametrize(
    ("check", "svc", "fragment"),
    [
        ({"port": 53}, service([{"port": 53, "protocol": "UDP"}, {"port": 80}]), "not a TCP port"),
        ({}, service([{"port": 53, "protocol": "UDP"}]), "no TCP port"),
        ({}, service([{"port": 80}], cluster_ip="None"), "no ClusterIP"),
    ],
)
def test_a_service_without_a_target_gets_its_problem_published(
    check: dict[str, Any], svc: dict[str, Any], fragment: str
) -> None:
    target = published(check, svc)
    assert target is not None and fragment in target.problem


def test_without_the_field_nothing_is_published() -> None:
    pool = parse_pool("p", POOL)
    a = assignment_for(
        parse_service(service([{"port": 80}])), Allocated(("198.51.100.1",), "p"), pool, {}
    )
    assert a.data_path is None and "dataPath" not in encode(a)
