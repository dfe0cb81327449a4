"""docs/values.md is generated from values.schema.json: it must be current."""

from __future__ import annotations

import runpy

from testbed.binaries import ROOT


def test_values_reference_is_current() -> None:
    tool = runpy.run_path(str(ROOT / "tools" / "values_doc.py"))
    expected = tool["render"]()
    assert (ROOT / "docs" / "values.md").read_text() == expected, (
        "docs/values.md is stale: run python tools/values_doc.py"
    )
    for key in ("allocator.mode", "loadBalancerClass", "announcer.runDir", "crds.install"):
        assert f"| `{key}` |" in expected
