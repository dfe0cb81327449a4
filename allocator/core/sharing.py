"""MetalLB's IP sharing rule, so Services that share under MetalLB share under exalb too.

Two Services may hold the same IP only if both carry the same
``allow-shared-ip`` key, their (protocol, port) pairs do not overlap, and
their backends are compatible: Cluster services share with Cluster services,
and Local services only with Local services that select the same pods (else
traffic would reach nodes that have no endpoint of one of them).
"""

from __future__ import annotations

from collections.abc import Iterable

from .service import ServiceInfo


def conflict(a: ServiceInfo, b: ServiceInfo) -> str | None:
    """Why ``a`` cannot share an IP with ``b``, or None if it can."""
    if a.sharing_key is None or b.sharing_key is None:
        return "it is not shared (no allow-shared-ip annotation on both)"
    if a.sharing_key != b.sharing_key:
        return f"sharing keys differ ({a.sharing_key!r} vs {b.sharing_key!r})"
    overlap = a.ports & b.ports
    if overlap:
        shown = ", ".join(f"{proto}/{port}" for proto, port in sorted(overlap))
        return f"ports overlap ({shown})"
    if a.traffic_policy != b.traffic_policy:
        return "externalTrafficPolicy differs (Local and Cluster cannot share)"
    if a.backend_key != b.backend_key:
        return "Local services may share only if they select the same pods"
    return None


def first_conflict(
    svc: ServiceInfo, owners: Iterable[ServiceInfo]
) -> tuple[ServiceInfo, str] | None:
    for o in owners:
        why = conflict(svc, o)
        if why:
            return o, why
    return None
