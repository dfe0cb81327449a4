"""Only exalbctl's adapter talks to the cluster (its core is in tests/unit/test_core_purity.py)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_core_purity import ROOT, _imports


def test_only_the_adapter_imports_the_client() -> None:
    users = sorted(
        str(f.relative_to(ROOT))
        for f in (ROOT / "exalbctl").rglob("*.py")
        if any(m.startswith("exalb.kube") for m in _imports(f))
    )
    assert users == [str(Path("exalbctl") / "cluster.py")]
