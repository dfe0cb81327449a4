"""Metric names as Prometheus sees them, and the names documents and queries use."""

from __future__ import annotations

import re

# exalb's own metrics and the standard process_* ones, whole words: not a family written
# as `exalb_allocator_*`, not BIRD's `exalb_1` protocol names
USED = re.compile(r"\b(?:exalb|process)_[a-z][a-z0-9_]*[a-z0-9]\b")
_SERIES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def exposed(text: str) -> set[str]:
    """Every name a query can use against this /metrics text: each family from its
    ``# TYPE`` line (present even before a labelled metric has its first series), and a
    histogram's ``_bucket``, ``_sum`` and ``_count``."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            names |= {name + suffix for suffix in _SERIES.get(kind, ())}
    return names


def used(text: str) -> set[str]:
    """The metric names a rule, a dashboard or a document mentions."""
    return set(USED.findall(text))
