"""The pure cores and the shared contract import no Kubernetes client, process or I/O machinery.

Decisions must be testable as data in, data out; anything that talks to the API server,
ExaBGP, a socket or a thread belongs to an adapter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "kubernetes",
    "urllib3",
    "prometheus_client",
    "structlog",
    "exabgp",
    "subprocess",
    "socket",
    "threading",
    "exalb.kube",
    "exalb.observability",
)
PURE = [
    "allocator/core",
    "announcer/core",
    "exalb/assignments",
    "exalb/bgppeer.py",
    "exalb/conditions.py",
    "exalb/heartbeat.py",
    "exalb/sessionstatus.py",
    "exalbctl/core",
]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


@pytest.mark.parametrize("package", PURE)
def test_pure_package_imports_no_client(package: str) -> None:
    root = ROOT / package
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    assert files, f"{package} has no modules"
    bad = {str(f.relative_to(ROOT)): sorted(filter(_forbidden, _imports(f))) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}
