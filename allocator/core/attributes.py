"""Per-Service BGP attributes from annotations, over those of the Service's VIPPool.

metallb#934 and #808: communities, local-pref and MED are wanted per Service, not
only per pool. Each annotation is checked on its own: a bad one is reported on
the Service (an Event naming the annotation and the rule) and left out, while the
Service keeps its IP and its valid annotations, and no other Service is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from exalb.assignments import Advertisement

from .communities import CommunityError, split

COMMUNITIES = "exalb.io/bgp-communities"  # "65000:100, large:64512:1:2, no-export"
LOCAL_PREF = "exalb.io/bgp-local-pref"  # iBGP sessions only
MED = "exalb.io/bgp-med"
UINT32_MAX = 2**32 - 1


@dataclass(frozen=True)
class ServiceAttributes:
    """What a Service's annotations add to (communities) or set over (local-pref, MED)."""

    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    local_pref: int | None = None
    med: int | None = None

    def apply(self, adv: Advertisement) -> Advertisement:
        return replace(
            adv,
            communities=tuple(dict.fromkeys(adv.communities + self.communities)),
            large_communities=tuple(dict.fromkeys(adv.large_communities + self.large_communities)),
            local_pref=adv.local_pref if self.local_pref is None else self.local_pref,
            med=adv.med if self.med is None else self.med,
        )


def parse_attributes(ann: Mapping[str, str]) -> tuple[ServiceAttributes | None, tuple[str, ...]]:
    """(the valid attributes, or None when no annotation sets any; one message per bad one)."""
    errors: list[str] = []
    std: tuple[str, ...] = ()
    large: tuple[str, ...] = ()
    if COMMUNITIES in ann:
        try:
            std, large = split([c for c in ann[COMMUNITIES].split(",") if c.strip()])
        except CommunityError as exc:
            errors.append(f"{COMMUNITIES}: {exc}")
    local_pref = _uint32(ann, LOCAL_PREF, errors)
    med = _uint32(ann, MED, errors)
    attrs = ServiceAttributes(std, large, local_pref, med)
    return (None if attrs == ServiceAttributes() else attrs), tuple(errors)


def _uint32(ann: Mapping[str, str], name: str, errors: list[str]) -> int | None:
    text = ann.get(name)
    if text is None:
        return None
    value = text.strip()
    if not value.isdigit() or int(value) > UINT32_MAX:
        errors.append(f"{name}: {text!r} is not an integer in 0..{UINT32_MAX}")
        return None
    return int(value)
