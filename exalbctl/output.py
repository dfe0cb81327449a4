"""Printing a command's result: aligned tables (the default), JSON or YAML.

Pure: strings in, a string out. A command hands over its result twice, as plain data
(for ``-o json|yaml``, stable keys that scripts may rely on) and as tables for people.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

FORMATS = ("table", "json", "yaml")
EMPTY = "-"


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"  # shown instead of the rows when there are none


def render_table(table: Table) -> str:
    if not table.rows:
        return f"{table.title}: {table.empty}\n"
    cells = [table.headers, *(tuple(c or EMPTY for c in r) for r in table.rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.headers))]
    lines = [f"{table.title}:"]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def render(data: Any, tables: Sequence[Table], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=False) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    return "\n".join(render_table(t) for t in tables)


def yaml_documents(objects: Sequence[Any]) -> str:
    """Objects as a multi-document YAML stream, ready for ``kubectl apply -f -``."""
    return str(yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False))
