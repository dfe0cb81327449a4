"""What the MetalLB -> exalb conversions share: findings and the small field helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
EXALB_API = "exalb.io/v1alpha1"


@dataclass(frozen=True)
class Finding:
    source: str  # "BGPPeer/tor-a"
    field: str  # "spec.bfdProfile"; "" for the whole object
    reason: str
    lost: bool = True  # behaviour differs after migration (``--strict`` fails)


def name_of(o: Mapping[str, Any]) -> str:
    return str((o.get("metadata") or {}).get("name") or "")


def spec_of(o: Mapping[str, Any]) -> Obj:
    spec = o.get("spec")
    return dict(spec) if isinstance(spec, Mapping) else {}


def is_set(value: Any) -> bool:
    return value is not None and value not in ("", [], {}) and value is not False


def exalb_object(kind: str, source: Mapping[str, Any], namespace: str, spec: Obj) -> Obj:
    """The exalb object that replaces ``source``: same name and labels, exalb's namespace."""
    md: Obj = {"name": name_of(source), "namespace": namespace}
    labels = (source.get("metadata") or {}).get("labels")
    if labels:
        md["labels"] = dict(labels)
    return {"apiVersion": EXALB_API, "kind": kind, "metadata": md, "spec": spec}


def unknown_fields(
    source: str, spec: Mapping[str, Any], known: Iterable[str], prefix: str
) -> list[Finding]:
    known = set(known)
    return [
        Finding(source, f"{prefix}.{k}", "not known to this migration (a newer MetalLB field?)")
        for k in sorted(spec)
        if k not in known and is_set(spec[k])
    ]
