"""Which EndpointSlices this node watches: every one, or only those of assigned Services.

The narrow watch (``exalb.assignments.slicescope``) is only as good as the labels
behind it, and those are written by two other parties: the allocator labels Services,
the EndpointSlice controller copies the labels onto slices. So the scope follows what
the shards say, and narrowing is checked against the API, not believed:

- every shard must declare the selector (an older allocator's shard does not, and
  its Services carry no label), else the node watches every EndpointSlice;
- a running node narrows only once the labelled view holds every slice of every
  assigned Service that the full view holds (the labels may still be on their way);
- widening needs no check: every slice is a superset;
- a slice that leaves the labelled view while its Service is still assigned is not a
  deletion until the API says so: the node reads it from the API instead
  (:func:`keep_unlabelled`) until it is labelled again, deleted, or no longer needed.

A node that starts while the shards declare the selector watches the labelled slices
from the start: it has announced nothing yet, so there is nothing a missing label
could take away, only a Service it announces once its slices are labelled.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from exalb.assignments import SCHEMA_KEY
from exalb.assignments.slicescope import declared_selector

Obj = dict[str, Any]


def wanted_selector(shards: Iterable[Obj]) -> str | None:
    """The label selector to watch EndpointSlices by; None for every EndpointSlice."""
    selectors = {declared_selector((s.get("metadata") or {}).get("annotations")) for s in shards}
    if len(selectors) != 1:
        return None  # no shards yet, or shards that disagree (an older allocator wrote one)
    return selectors.pop()


def assigned_services(shards: Iterable[Obj]) -> set[str]:
    """The ``namespace/name`` of every Service with an entry in the shards."""
    out = set()
    for shard in shards:
        for key in shard.get("data") or {}:
            if key != SCHEMA_KEY:
                namespace, _, name = key.partition(".")
                out.add(f"{namespace}/{name}")
    return out


def unlabelled(
    assigned: Collection[str], every: Mapping[str, str | None], labelled: Collection[str]
) -> list[str]:
    """Slices (by key) of assigned Services that the labelled view does not hold.

    ``every`` maps each slice of the full view to its Service's ``namespace/name``.
    While this is not empty, narrowing would take those Services' endpoints away.
    """
    return sorted(key for key, svc in every.items() if svc in assigned and key not in labelled)


def keep_unlabelled(service: str | None, assigned: Collection[str]) -> bool:
    """Whether a slice that left the labelled view, and still exists, stays in the decision.

    Its Service lost the label (someone's edit, or an older allocator's) while still
    assigned: the allocator writes the label again at its next pass, and meanwhile the
    node keeps reading the slice from the API rather than withdrawing a healthy route.
    Once the Service has no assignment, it is nothing to this node.
    """
    return service is not None and service in assigned
