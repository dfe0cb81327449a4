"""BGP community syntax as MetalLB accepts it: ``65000:100``, ``large:1:2:3``, well-known names."""

from __future__ import annotations

WELL_KNOWN = {
    "no-export": "65535:65281",
    "no-advertise": "65535:65282",
    "no-export-subconfed": "65535:65283",
    "graceful-shutdown": "65535:0",  # RFC 8326
}


class CommunityError(ValueError):
    pass


def split(values: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(standard, large) communities, normalised; raises :class:`CommunityError`."""
    standard: list[str] = []
    large: list[str] = []
    for raw in values:
        v = str(raw).strip()
        if v.lower() in WELL_KNOWN:
            standard.append(WELL_KNOWN[v.lower()])
        elif v.lower().startswith("large:"):
            parts = v[6:].split(":")
            if len(parts) != 3 or not all(_uint(p, 2**32 - 1) for p in parts):
                raise CommunityError(f"{v!r}: a large community is large:A:B:C, each 0..4294967295")
            large.append(":".join(str(int(p)) for p in parts))
        else:
            parts = v.split(":")
            if len(parts) != 2 or not all(_uint(p, 65535) for p in parts):
                raise CommunityError(
                    f"{v!r}: a community is A:B with A and B in 0..65535, large:A:B:C, "
                    f"or one of {sorted(WELL_KNOWN)}"
                )
            standard.append(":".join(str(int(p)) for p in parts))
    return tuple(dict.fromkeys(standard)), tuple(dict.fromkeys(large))


def _uint(text: str, limit: int) -> bool:
    return text.isdigit() and int(text) <= limit
