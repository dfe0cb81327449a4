"""What ``exalbctl migrate metallb`` tells a person: the report of findings and the summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exalbctl.output import Table, render_table

from .migrate import Migration


def report_text(m: Migration) -> str:
    lost = len(m.lost)
    other = len(m.findings) - lost
    head = (
        f"migration report: {len(m.objects)} exalb objects written, "
        f"{lost} not carried over (behaviour differs), {other} notes and steps for you\n"
    )
    rows = tuple(("LOST" if f.lost else "NOTE", f.source, f.field, f.reason) for f in m.findings)
    return head + render_table(
        Table("Findings", ("", "OBJECT", "FIELD", "REASON"), rows, empty="none")
    )


def summary_data(m: Migration, files: Mapping[int, str]) -> dict[str, Any]:
    return {
        "objects": [
            {"kind": o["kind"], "name": o["metadata"]["name"], "file": files.get(i, "")}
            for i, o in enumerate(m.objects)
        ],
        "findings": [
            {"lost": f.lost, "object": f.source, "field": f.field, "reason": f.reason}
            for f in m.findings
        ],
    }


def summary_table(m: Migration, files: Mapping[int, str]) -> Table:
    return Table(
        "Migrated",
        ("KIND", "NAME", "FILE"),
        tuple(
            (o["kind"], o["metadata"]["name"], files.get(i, "")) for i, o in enumerate(m.objects)
        ),
        empty="no MetalLB IPAddressPool or BGPPeer found",
    )
