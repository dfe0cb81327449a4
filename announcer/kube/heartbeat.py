"""Renewing this node's heartbeat Lease (``exalb.heartbeat`` says why and how it is read).

One PUT per renewal: the Lease as last written carries its resourceVersion, so it is
read again only after someone else changed it (409) or deleted it (404). A failed
renewal is logged and tried again a quarter-interval later; it never blocks announcing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from exalb.background import Loop
from exalb.heartbeat import lease_name, renew_interval
from exalb.kube.lease import micro_time
from exalb.kube.rest import ApiError, Client, resource_path

API = "coordination.k8s.io/v1"
log = structlog.get_logger("heartbeat")

Obj = dict[str, Any]


class HeartbeatWriter:
    def __init__(
        self,
        api: Client,
        namespace: str,
        node: str,
        duration: int,
        owners: list[Obj] | None = None,
        on_renewed: Callable[[float], None] = lambda _at: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``duration``: the Lease's leaseDurationSeconds; it is renewed four times in it."""
        self._api = api
        self._ns = namespace
        self._node = node
        self._name = lease_name(node)
        self._path = resource_path(API, "leases", namespace, self._name)
        self._duration = duration
        self._owners = owners or []  # ownerReferences (exalb.kube.owner): gone on uninstall
        self._on_renewed = on_renewed
        self._clock = clock
        self._lease: Obj | None = None  # as the server last returned it
        interval = renew_interval(duration)
        self._timeout = max(interval, 2.0)  # seconds one request may take
        self._log = log.bind(node=node, lease=self._name)
        self._loop = Loop("heartbeat", self._step, interval, self._log, after_error=interval / 4)

    def start(self) -> HeartbeatWriter:
        self._loop.start()
        return self

    def stop(self) -> None:
        """Stop renewing; the Lease expires, as the kubelet's does (``exalb.heartbeat``)."""
        self._loop.stop()

    def _step(self) -> None:
        self.renew_once()

    def renew_once(self) -> None:
        spec = {
            "holderIdentity": self._node,
            "leaseDurationSeconds": self._duration,
            "renewTime": micro_time(datetime.fromtimestamp(self._clock(), UTC)),
        }
        lease = self._lease if self._lease is not None else self._read()
        self._lease = self._create(spec) if lease is None else self._replace(lease, spec)
        self._on_renewed(self._clock())

    def _replace(self, lease: Obj, spec: Obj) -> Obj:
        body = put_body(lease, spec, self._owners)
        try:
            return self._api.replace(self._path, body, timeout=self._timeout)
        except ApiError as exc:
            if exc.status in (404, 409):  # deleted or changed by someone else: read it again
                self._lease = None
            raise

    def _read(self) -> Obj | None:
        try:
            return self._api.get(self._path, timeout=self._timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _create(self, spec: Obj) -> Obj:
        body = {
            "apiVersion": API,
            "kind": "Lease",
            "metadata": {
                "name": self._name,
                "namespace": self._ns,
                **({"ownerReferences": self._owners} if self._owners else {}),
            },
            "spec": spec,
        }
        created = self._api.create(
            resource_path(API, "leases", self._ns), body, timeout=self._timeout
        )
        self._log.info("heartbeat lease created")
        return created


def put_body(lease: Obj, spec: Obj, owners: list[Obj] | None = None) -> Obj:
    """``lease`` renewed with ``spec``, without managedFields: the server keeps its own when a
    PUT carries none, so there is no reason to send them back each time. With ``owners``,
    a Lease written before it had them gets them."""
    metadata = {k: v for k, v in (lease.get("metadata") or {}).items() if k != "managedFields"}
    if owners:
        metadata["ownerReferences"] = owners
    return {**lease, "metadata": metadata, "spec": {**(lease.get("spec") or {}), **spec}}
