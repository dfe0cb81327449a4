"""An allocator that finds a schema 1 layout (an older version's) rewrites it as schema 2, and
a reader listing the ConfigMaps at any moment meanwhile finds every Service."""

from __future__ import annotations

import json
import time

import pytest

from exalb.assignments import LABEL, SCHEMA_KEY, SHARD_BUDGET, Assignment, read_shards
from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration

SERVICES = 250  # about 22 KiB in schema 2: more than one shard; one shard in schema 1


def schema_1(a: Assignment) -> str:
    """An entry as schema 1 wrote it (the Services here use the default advertisement)."""
    doc = {
        "namespace": a.namespace,
        "name": a.name,
        "uid": a.uid,
        "ips": list(a.ips),
        "pool": a.pool,
        "trafficPolicy": a.traffic_policy,
        "advertisements": [{"aggregationLength": 32}],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def test_a_schema_1_layout_is_rewritten_with_every_service_seen_throughout(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("main", "198.51.100.0/24")
    first = start_allocator("first")
    for i in range(SERVICES):
        cluster.service(namespace, f"s{i:03d}")
    wait_for("all published", lambda: len(cluster.published()) == SERVICES, 90)
    entries = cluster.published()
    first.proc.stop()

    # What the previous version left: one shard of schema 1 holding every entry.
    for cm in cluster.core.list_namespaced_config_map(
        cluster.exalb_ns, label_selector=f"{LABEL}=true"
    ).items:
        cluster.core.delete_namespaced_config_map(cm.metadata.name, cluster.exalb_ns)
    data = {SCHEMA_KEY: "1", **{k: schema_1(a) for k, a in entries.items()}}
    cluster.core.create_namespaced_config_map(
        cluster.exalb_ns,
        {"metadata": {"name": "exalb-assignments-0", "labels": {LABEL: "true"}}, "data": data},
    )
    assert cluster.published() == entries  # a schema 2 reader reads schema 1 as it is

    start_allocator("second", False)
    deadline, lists, done = time.monotonic() + 90, 0, False
    while not done and time.monotonic() < deadline:
        # A list is one consistent snapshot: what a reader starting now would see.
        shards = [
            cm.data or {}
            for cm in cluster.core.list_namespaced_config_map(
                cluster.exalb_ns, label_selector=f"{LABEL}=true"
            ).items
        ]
        lists += 1
        assert read_shards(shards).entries == entries, f"list {lists}"
        done = len(shards) > 1 and all(d[SCHEMA_KEY] == "2" for d in shards)
    assert done, "the allocator did not rewrite the layout as schema 2 in 90 s"
    sizes = [sum(len(k) + len(v) for k, v in d.items()) for d in shards]
    assert max(sizes) <= SHARD_BUDGET
    assert not any('"namespace"' in v for d in shards for v in d.values())
