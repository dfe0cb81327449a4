"""The informers the announcer decides from, and reading a consistent view out of them.

All of them keep their last state while the API server is unreachable (see
``kube.informer``), so an outage freezes the decision instead of emptying it
(metallb#615).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from kubernetes import client

import assignments as contract
from kube.informer import Informer

GROUP = "exalb.io"
VERSION = "v1alpha1"
PEER_PLURAL = "bgppeers"

Obj = dict[str, Any]


@dataclass
class View:
    """One read of every mirror (each is a copy; the informers keep running)."""

    node: Obj | None
    peers: list[Obj]
    secrets: dict[str, Obj]
    configmaps: list[Obj]
    slices: list[Obj]


class Sources:
    def __init__(
        self, api: client.ApiClient, namespace: str, node_name: str, on_change: Callable[[], None]
    ) -> None:
        core = client.CoreV1Api(api)
        discovery = client.DiscoveryV1Api(api)
        custom = client.CustomObjectsApi(api)

        def changed(_key: str, _obj: Obj | None) -> None:
            on_change()

        self.node = Informer(
            "node",
            partial(core.list_node, field_selector=f"metadata.name={node_name}"),
            changed,
        )
        self.peers = Informer(
            "bgppeers",
            partial(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PEER_PLURAL),
            changed,
        )
        self.secrets = Informer("secrets", partial(core.list_namespaced_secret, namespace), changed)
        self.configmaps = Informer(
            "assignments",
            partial(
                core.list_namespaced_config_map, namespace, label_selector=f"{contract.LABEL}=true"
            ),
            changed,
        )
        self.slices = Informer(
            "endpointslices", discovery.list_endpoint_slice_for_all_namespaces, changed
        )
        self._node_name = node_name
        self.all = [self.node, self.peers, self.secrets, self.configmaps, self.slices]

    def start(self) -> None:
        for inf in self.all:
            inf.start()

    def stop(self) -> None:
        for inf in self.all:
            inf.stop()

    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self.all)

    def unsynced(self) -> list[str]:
        return [inf.name for inf in self.all if not inf.synced.is_set()]

    def view(self) -> View:
        secrets = {k.split("/", 1)[-1]: v for k, v in self.secrets.snapshot().items()}
        return View(
            node=self.node.get(self._node_name),
            peers=list(self.peers.snapshot().values()),
            secrets=secrets,
            configmaps=list(self.configmaps.snapshot().values()),
            slices=list(self.slices.snapshot().values()),
        )
