"""API objects (plain dicts from the informers) to the core's dataclasses.

Conversion never raises on user input: a BGPPeer that cannot be used becomes
a Peer with ``problem`` set (no session is run for it, and the reason is
logged and exported), so one bad object cannot stop the others.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from announcer.core.model import Endpoint, Node
from exalb.bgppeer import PASSWORD_KEY, Peer, SpecError, parse_spec

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _time(text: Any) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def node_from(obj: Obj) -> Node:
    md = obj.get("metadata", {})
    status = obj.get("status", {}) or {}
    ready, ready_since, unavailable = False, None, False
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            ready = c.get("status") == "True"
            ready_since = _time(c.get("lastTransitionTime"))
        elif c.get("type") == "NetworkUnavailable":
            unavailable = c.get("status") == "True"
    addresses = tuple(
        (str(a.get("type", "")), str(a.get("address", ""))) for a in status.get("addresses") or []
    )
    spec = obj.get("spec") or {}
    return Node(
        name=str(md.get("name", "")),
        labels=dict(md.get("labels") or {}),
        ready=ready,
        ready_since=ready_since,
        network_unavailable=unavailable,
        addresses=addresses,
        unschedulable=bool(spec.get("unschedulable")),
        taints=frozenset(str(t.get("key", "")) for t in spec.get("taints") or []),
    )


def endpoints_from(slices: Iterable[Obj]) -> dict[str, list[Endpoint]]:
    """Endpoints per Service ``namespace/name``, merged across that Service's slices."""
    out: dict[str, list[Endpoint]] = {}
    for s in slices:
        svc, eps = slice_endpoints(s)
        if svc is not None:
            out.setdefault(svc, []).extend(eps)
    return out


@functools.lru_cache(maxsize=8192)
def endpoint(node: str | None, ready: bool, serving: bool, terminating: bool) -> Endpoint:
    """Equal endpoints are one object: a node has few distinct ones, a cluster has 10,000s."""
    return Endpoint(node, ready, serving, terminating)


def slice_endpoints(s: Obj) -> tuple[str | None, list[Endpoint]]:
    """One EndpointSlice: its Service ``namespace/name`` (None if unlabelled) and endpoints."""
    md = s.get("metadata", {})
    svc = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not svc:
        return None, []
    eps = []
    for e in s.get("endpoints") or []:
        if not e.get("addresses"):
            continue
        cond = e.get("conditions") or {}
        ready = cond.get("ready")
        serving = cond.get("serving")
        eps.append(
            endpoint(
                e.get("nodeName"),
                ready is None or bool(ready),
                (ready is None or bool(ready)) if serving is None else bool(serving),
                bool(cond.get("terminating")),
            )
        )
    return f"{md.get('namespace')}/{svc}", eps


def secret_password(secret: Obj | None) -> str | None:
    if secret is None:
        return None
    raw = (secret.get("data") or {}).get(PASSWORD_KEY)  # the API returns no stringData
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def peer_from(obj: Obj, secrets: Mapping[str, Obj], secrets_namespace: str) -> Peer:
    """A BGPPeer object; ``secrets`` maps name -> Secret of the BGP secrets namespace.

    That namespace is the only place the announcer may read Secrets from (docs/bgppeer.md);
    the spec is checked by ``exalb.bgppeer.parse_spec``, as the allocator checks it.
    """
    peer = spec_peer(obj, secrets_namespace)
    if peer.password_secret is None or peer.problem is not None:
        return peer
    password = secret_password(secrets.get(peer.password_secret))
    if password is None:
        return replace(peer, problem=missing_password(peer.password_secret, secrets_namespace))
    return replace(peer, password=password)


def spec_peer(obj: Obj, secrets_namespace: str) -> Peer:
    """A BGPPeer object without its password resolved; ``problem`` set when its spec is bad.

    ``exalbctl explain`` reads peers this way: only the announcers read the Secrets, and
    they report the peers they cannot use.
    """
    name = str(obj.get("metadata", {}).get("name", ""))
    try:
        return parse_spec(obj.get("spec", {}) or {}, secrets_namespace, name)
    except SpecError as exc:
        return Peer(name=name, my_asn=0, peer_asn=0, address="0.0.0.0", problem=str(exc))


def missing_password(secret: str, namespace: str) -> str:
    return (
        f"passwordSecret {secret!r} is missing from namespace {namespace!r} "
        f"or has no {PASSWORD_KEY!r} key"
    )
