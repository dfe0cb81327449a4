"""Go durations (``90s``, ``1m30s``, ``500ms``), as metav1.Duration writes them for MetalLB."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds; ``0`` alone is allowed, as in Go."""
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0.0
    if not s or s.startswith("-"):
        raise DurationError(f"{text!r} is not a duration")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise DurationError(f"{text!r} is not a duration")
    return total


def format_seconds(seconds: float) -> str:
    """``90.0`` -> ``90s``; fractions keep milliseconds (``1.5s``)."""
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:g}s"
