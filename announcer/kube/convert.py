"""API objects (plain dicts from the informers) to the core's dataclasses.

Conversion never raises on user input: a BGPPeer that cannot be used becomes
a Peer with ``problem`` set (no session is run for it, and the reason is
logged and exported), so one bad object cannot stop the others.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from announcer.core.bfd import timers_from_spec
from announcer.core.model import Endpoint, Node, Peer
from exalb.assignments import LabelSelector, SelectorError

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration(text: Any) -> float | None:
    """A metav1.Duration string ("30s", "1m30s", "1.5h") in seconds; None if absent."""
    if text is None or text == "":
        return None
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            raise ValueError(f"bad duration {s!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"bad duration {s!r}")
    return total


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
    return Node(
        name=str(md.get("name", "")),
        labels=dict(md.get("labels") or {}),
        ready=ready,
        ready_since=ready_since,
        network_unavailable=unavailable,
        addresses=addresses,
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
    raw = (secret.get("data") or {}).get("password")  # the API returns no stringData
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _ip(value: Any, what: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an IP address") from None


def peer_from(obj: Obj, secrets: Mapping[str, Obj], secrets_namespace: str) -> Peer:
    """A BGPPeer object; ``secrets`` maps name -> Secret of the BGP secrets namespace.

    That namespace is the only place the announcer may read Secrets from (docs/bgppeer.md),
    so a ``passwordSecret`` naming another namespace is refused here as the CRD refuses it.
    """
    md = obj.get("metadata", {})
    name = str(md.get("name", ""))
    spec = obj.get("spec", {}) or {}
    try:
        return _peer(name, spec, secrets, secrets_namespace)
    except (ValueError, TypeError, KeyError, SelectorError) as exc:
        return Peer(name=name, my_asn=0, peer_asn=0, address="0.0.0.0", problem=str(exc))


def _peer(name: str, spec: Obj, secrets: Mapping[str, Obj], secrets_namespace: str) -> Peer:
    my_asn, peer_asn = int(spec["myASN"]), int(spec["peerASN"])
    if not (0 < my_asn < 2**32 and 0 < peer_asn < 2**32):
        raise ValueError("myASN and peerASN must be in 1..4294967295")
    hold = duration(spec.get("holdTime"))
    hold_s = 30 if hold is None else round(hold)
    if hold_s != 0 and hold_s < 3:
        raise ValueError("holdTime must be 0 or at least 3s")
    connect = duration(spec.get("connectTime"))
    password = spec.get("password") or None
    problem = None
    ref = spec.get("passwordSecret")
    if ref:
        if password:
            raise ValueError("password and passwordSecret are mutually exclusive")
        if "namespace" in ref:
            raise ValueError(
                "passwordSecret.namespace is not supported: the Secret must be in the BGP "
                f"secrets namespace {secrets_namespace!r}"
            )
        secret_name = str(ref.get("name", ""))
        password = secret_password(secrets.get(secret_name))
        if password is None:
            problem = (
                f"passwordSecret {secret_name!r} is missing from namespace "
                f"{secrets_namespace!r} or has no 'password' key"
            )
    selectors = tuple(LabelSelector.parse(s) for s in spec.get("nodeSelectors") or [])
    return Peer(
        name=name,
        my_asn=my_asn,
        peer_asn=peer_asn,
        address=_ip(spec["peerAddress"], "peerAddress"),
        port=int(spec.get("peerPort") or 179),
        source_address=_ip(spec["sourceAddress"], "sourceAddress")
        if spec.get("sourceAddress")
        else None,
        router_id=_ip(spec["routerID"], "routerID") if spec.get("routerID") else None,
        hold_time=hold_s,
        connect_time=None if connect is None else round(connect),
        password=password,
        ebgp_multihop=bool(spec.get("ebgpMultiHop", False)),
        ttl_security=bool(spec.get("ttlSecurity", False)),
        node_selectors=selectors,
        graceful_restart=bool(spec.get("enableGracefulRestart", False)),
        description=str(spec.get("description", "")),
        bfd=timers_from_spec(spec.get("bfd")),
        problem=problem,
    )
