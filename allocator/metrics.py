"""The allocator's Prometheus metrics (``exalb_allocator_*``), on a registry of its own.

A per-process registry (not the global default) keeps two allocators in one
test process apart. Every name is listed in docs/metrics.md, which a test keeps
in step with this file.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exalb.observability.metrics import register_process_metrics


class AllocatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        register_process_metrics(r)
        self.pool_capacity = Gauge(
            "exalb_allocator_pool_capacity",
            "Addresses a pool can hand out.",
            ["pool", "family"],
            registry=r,
        )
        self.pool_in_use = Gauge(
            "exalb_allocator_pool_in_use",
            "Addresses of a pool held by Services.",
            ["pool", "family"],
            registry=r,
        )
        self.pool_ready = Gauge(
            "exalb_allocator_pool_ready",
            "1 if the pool is usable (not overlapping or invalid).",
            ["pool"],
            registry=r,
        )
        self.allocations = Counter(
            "exalb_allocator_allocations_total",
            "IPs assigned to Services (new or moved).",
            ["pool"],
            registry=r,
        )
        self.failures = Counter(
            "exalb_allocator_allocation_failures_total",
            "Services that could not get an IP, by reason (counted when the reason changes).",
            ["reason"],
            registry=r,
        )
        self.services = Gauge(
            "exalb_allocator_services",
            "LoadBalancer Services handled, by state.",
            ["state"],
            registry=r,
        )
        self.reconcile_seconds = Histogram(
            "exalb_allocator_reconcile_duration_seconds",
            "Time to plan and converge once (plan + writes).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.plan_seconds = Histogram(
            "exalb_allocator_plan_duration_seconds",
            "Time to compute the allocation plan.",
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=r,
        )
        self.phase_seconds = Histogram(
            "exalb_allocator_reconcile_phase_duration_seconds",
            "Time of each phase of a reconcile: read (the mirrors), plan, diff, write "
            "(Service writes, waited for), publish (hand-over to the ConfigMap writer), finish.",
            ["phase"],
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=r,
        )
        self.plans = Counter(
            "exalb_allocator_plans_total",
            "Plans computed, by kind: full (phase 1 recomputed) or incremental (updated).",
            ["kind"],
            registry=r,
        )
        self.leader = Gauge(
            "exalb_allocator_is_leader",
            "1 while this process holds the allocator Lease.",
            registry=r,
        )
        self.writes = Counter(
            "exalb_allocator_api_writes_total",
            "Successful API writes, by object kind.",
            ["kind"],
            registry=r,
        )
        self.write_errors = Counter(
            "exalb_allocator_api_write_errors_total",
            "Failed API writes, by object kind.",
            ["kind"],
            registry=r,
        )
        self.assignments_shards = Gauge(
            "exalb_allocator_assignments_shards",
            "Number of assignments ConfigMap shards.",
            registry=r,
        )
        self.largest_shard_bytes = Gauge(
            "exalb_allocator_assignments_largest_shard_bytes",
            "Bytes of data in the largest assignments ConfigMap shard (at most 16 KiB; the "
            "apiserver refuses a ConfigMap over 1 MiB).",
            registry=r,
        )
        self.assignments_written_bytes = Counter(
            "exalb_allocator_assignments_written_bytes",
            "Bytes of shard data written: what every announcer receives and reads again.",
            registry=r,
        )
