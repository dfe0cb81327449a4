"""Kubernetes label selectors as plain data, and matching them against labels.

Pools select namespaces and Services, advertisements and peers select nodes.
Both the allocator and the announcers match selectors, so the data type and
its semantics (those of ``metav1.LabelSelector``) live in the shared contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


class SelectorError(ValueError):
    """A selector that Kubernetes itself would reject."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True)
class LabelSelector:
    """``matchLabels`` and ``matchExpressions`` ANDed; the empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.match_expressions
        )

    @classmethod
    def parse(cls, raw: Any) -> LabelSelector:
        """From the API's JSON shape; raises :class:`SelectorError` on anything malformed."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise SelectorError(f"selector must be an object, got {type(raw).__name__}")
        ml = raw.get("matchLabels") or {}
        if not isinstance(ml, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in ml.items()
        ):
            raise SelectorError("matchLabels must map strings to strings")
        exprs = []
        for e in raw.get("matchExpressions") or []:
            if not isinstance(e, Mapping) or not isinstance(e.get("key"), str):
                raise SelectorError("each matchExpressions entry needs a string key")
            op = e.get("operator")
            if op not in OPERATORS:
                raise SelectorError(f"unknown operator {op!r} (want one of {sorted(OPERATORS)})")
            values = e.get("values") or []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise SelectorError(f"values of {e['key']!r} must be a list of strings")
            if op in ("In", "NotIn") and not values:
                raise SelectorError(f"operator {op} on {e['key']!r} needs at least one value")
            if op in ("Exists", "DoesNotExist") and values:
                raise SelectorError(f"operator {op} on {e['key']!r} takes no values")
            exprs.append(Requirement(e["key"], op, tuple(sorted(values))))
        return cls(tuple(sorted(ml.items())), tuple(exprs))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            out["matchExpressions"] = [
                {
                    "key": r.key,
                    "operator": r.operator,
                    **({"values": list(r.values)} if r.values else {}),
                }
                for r in self.match_expressions
            ]
        return out


def any_matches(selectors: tuple[LabelSelector, ...], labels: Mapping[str, str]) -> bool:
    """MetalLB's rule for lists of selectors: empty list = everything, else any one (OR)."""
    return not selectors or any(s.matches(labels) for s in selectors)
