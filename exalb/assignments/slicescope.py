"""Which EndpointSlices the announcers need: the contract that lets them watch only those.

Every node needs the endpoints of the Services exalb assigned, and of no other. The
allocator labels each Service it assigns with :data:`SERVICE_LABEL`; the EndpointSlice
controller copies a Service's labels onto its EndpointSlices (and removes them with it),
so the API server can filter the announcers' list and watch by :data:`SLICE_SELECTOR`
in its watch cache, before it serialises an event for each node.

An allocator that labels says so on every shard it writes (:data:`SCOPE_ANNOTATION`).
An older allocator writes shards without it and labels nothing; its readers then keep
watching every EndpointSlice (docs/assignments-contract.md, "EndpointSlice scope").
"""

from __future__ import annotations

from collections.abc import Mapping

SERVICE_LABEL = "exalb.io/assigned"
SLICE_SELECTOR = f"{SERVICE_LABEL}=true"
SCOPE_ANNOTATION = "exalb.io/endpointslice-selector"


def declared_selector(annotations: Mapping[str, str] | None) -> str | None:
    """The EndpointSlice selector a shard's writer vouches for, if it is the one we know."""
    value = (annotations or {}).get(SCOPE_ANNOTATION)
    return value if value == SLICE_SELECTOR else None
