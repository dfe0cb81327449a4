"""announcer.core stays pure: no Kubernetes, ExaBGP, sockets or threads in the decision code."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "announcer" / "core"
FORBIDDEN = {"kubernetes", "kube", "exabgp", "socket", "subprocess", "threading", "structlog"}


def test_core_imports_nothing_impure() -> None:
    files = sorted(CORE.glob("*.py"))
    assert files
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in FORBIDDEN, f"{f.name} imports {n}"
