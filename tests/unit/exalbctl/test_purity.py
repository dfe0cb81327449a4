"""exalbctl's core imports no client or I/O machinery, by the same rule as the daemons' cores."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_core_purity import ROOT, _forbidden, _imports


def test_exalbctl_core_imports_no_client() -> None:
    files = sorted((ROOT / "exalbctl" / "core").rglob("*.py"))
    assert files
    bad = {str(f.relative_to(ROOT)): sorted(filter(_forbidden, _imports(f))) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_adapter_imports_the_client() -> None:
    users = sorted(
        str(f.relative_to(ROOT))
        for f in (ROOT / "exalbctl").rglob("*.py")
        if any(m.startswith("exalb.kube") for m in _imports(f))
    )
    assert users == [str(Path("exalbctl") / "cluster.py")]
