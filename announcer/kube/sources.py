"""The informers the announcer decides from, and reading a consistent view out of them.

All of them keep their last state while the API server is unreachable (see
``kube.informer``), so an outage freezes the decision instead of emptying it
(metallb#615).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import exalb.assignments as contract
from announcer.kube.convert import slice_endpoints
from announcer.kube.slicescope import ScopedSlices
from exalb.assignments.slicescope import SCOPE_ANNOTATION
from exalb.kube.informer import Informer
from exalb.kube.rest import Client, resource_path

GROUP = "exalb.io"
VERSION = "v1alpha1"
PEER_PLURAL = "bgppeers"
POOL_PLURAL = "vippools"

Obj = dict[str, Any]


OnChange = Callable[[str, str], None]  # (informer name, object key) -> None


@dataclass
class View:
    """What every Service's decision shares: this node, the peers, their Secrets, the pools."""

    node: Obj | None
    peers: list[Obj]
    secrets: dict[str, Obj]  # by name, all in ``secrets_namespace``
    secrets_namespace: str
    pools: dict[str, Obj]  # VIPPool name -> its slim_pool() copy


def _meta(obj: Obj, labels: bool = False) -> Obj:
    md = obj.get("metadata", {})
    out = {k: md[k] for k in ("name", "namespace", "resourceVersion") if k in md}
    if labels and md.get("labels"):
        out["labels"] = md["labels"]
    return out


def slim_slice(obj: Obj) -> Obj:
    """An EndpointSlice as the decision reads it: its Service and its endpoints, converted once.

    The mirror holds the converted form, so the reconciler keeps no second copy
    and equal endpoints are one shared object (``convert.endpoint``): together
    most of the announcer's memory at 10,000 Services.
    """
    svc, eps = slice_endpoints(obj)
    return {"metadata": _meta(obj), "service": svc, "endpoints": tuple(eps)}


def slim_node(obj: Obj) -> Obj:
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    return {
        "metadata": _meta(obj, labels=True),
        # A cordon and taints may drain the node (Options.drain).
        "spec": {
            "unschedulable": bool(spec.get("unschedulable")),
            "taints": [{"key": t.get("key")} for t in spec.get("taints") or []],
        },
        "status": {
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "lastTransitionTime")}
                for c in status.get("conditions") or []
            ],
            "addresses": status.get("addresses") or [],
        },
    }


def slim_configmap(obj: Obj) -> Obj:
    """A shard's entries, and the EndpointSlice selector its writer vouches for."""
    md = _meta(obj)
    selector = ((obj.get("metadata") or {}).get("annotations") or {}).get(SCOPE_ANNOTATION)
    if selector is not None:
        md["annotations"] = {SCOPE_ANNOTATION: selector}
    return {"metadata": md, "data": obj.get("data") or {}}


def slim_secret(obj: Obj) -> Obj:
    data = obj.get("data") or {}
    return {
        "metadata": _meta(obj),
        "data": {"password": data["password"]} if "password" in data else {},
    }


def slim_peer(obj: Obj) -> Obj:
    """The spec, and its generation (the status reports which one each session runs)."""
    md = {**_meta(obj), "generation": (obj.get("metadata") or {}).get("generation", 0)}
    return {"metadata": md, "spec": obj.get("spec") or {}}


def slim_pool(obj: Obj) -> Obj:
    """A VIPPool as the announcer reads it: only the addresses it may announce from."""
    spec = obj.get("spec") or {}
    return {"metadata": _meta(obj), "spec": {"addresses": spec.get("addresses")}}


class Sources:
    """The announcer's informers; ``on_change`` hears of every change once started.

    ``on_change`` is set after construction (``main`` wires the reconciler, which reads
    these sources, before it starts them), so construction needs no cycle.
    """

    def __init__(self, api: Client, namespace: str, secrets_namespace: str, node_name: str) -> None:
        self.on_change: OnChange = lambda _kind, _key: None

        def changed(kind: str) -> Callable[[str, Obj | None], None]:
            return lambda key, _obj: self.on_change(kind, key)

        self.node = Informer(
            "node",
            api.lister(resource_path("v1", "nodes"), field_selector=f"metadata.name={node_name}"),
            changed("node"),
            transform=slim_node,
        )
        self.peers = Informer(
            "bgppeers",
            api.lister(resource_path(f"{GROUP}/{VERSION}", PEER_PLURAL, namespace)),
            changed("bgppeers"),
            transform=slim_peer,
        )
        self.secrets = Informer(
            "secrets",
            api.lister(resource_path("v1", "secrets", secrets_namespace)),
            changed("secrets"),
            transform=slim_secret,
        )
        self.pools = Informer(
            "vippools",
            api.lister(resource_path(f"{GROUP}/{VERSION}", POOL_PLURAL, namespace)),
            changed("vippools"),
            transform=slim_pool,
        )

        def shard_changed(key: str, _obj: Obj | None) -> None:
            self.slices.shards_changed()  # a shard may change which slices to watch
            self.on_change("assignments", key)

        self.configmaps = Informer(
            "assignments",
            api.lister(
                resource_path("v1", "configmaps", namespace),
                label_selector=f"{contract.LABEL}=true",
            ),
            shard_changed,
            transform=slim_configmap,
        )
        self.slices = ScopedSlices(
            api,
            self.configmaps,
            lambda key: self.on_change("endpointslices", key),
            slim_slice,
            node_name,
        )
        self._node_name = node_name
        self._secrets_namespace = secrets_namespace
        self.informers = [self.node, self.peers, self.secrets, self.pools, self.configmaps]

    def start(self) -> None:
        for inf in self.informers:
            inf.start()
        self.slices.start()

    def stop(self) -> None:
        for inf in self.informers:
            inf.stop()
        self.slices.stop()

    def synced(self) -> bool:
        return not self.unsynced()

    def has_synced(self, kind: str) -> bool:
        """Whether the informer named ``kind`` (e.g. "assignments") has listed once."""
        return kind not in self.unsynced()

    def unsynced(self) -> list[str]:
        names = [inf.name for inf in self.informers if not inf.synced.is_set()]
        return names if self.slices.is_synced() else [*names, self.slices.name]

    def view(self) -> View:
        secrets = {k.split("/", 1)[-1]: v for k, v in self.secrets.snapshot().items()}
        return View(
            node=self.node.get(self._node_name),
            peers=list(self.peers.snapshot().values()),
            secrets=secrets,
            secrets_namespace=self._secrets_namespace,
            pools={k.split("/", 1)[-1]: v for k, v in self.pools.snapshot().items()},
        )

    def shard(self, key: str) -> Obj | None:
        """One assignment ConfigMap as last seen (None: deleted)."""
        return self.configmaps.get(key)

    def shards(self) -> dict[str, Obj]:
        return self.configmaps.snapshot()

    def slice(self, key: str) -> Obj | None:
        """One EndpointSlice, converted by :func:`slim_slice` (None: deleted)."""
        return self.slices.get(key)

    def all_slices(self) -> dict[str, Obj]:
        return self.slices.snapshot()
