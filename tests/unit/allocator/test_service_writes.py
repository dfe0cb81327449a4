"""The Service write's fallback: an API server that drops metadata sent to /status.

The real API server (1.37) keeps it, which tests/integration/allocator/test_fencing.py
checks; this covers the other kind, with a stand-in that stores what a strategy resetting
everything but status would store.
"""

from __future__ import annotations

import copy
from typing import Any

from allocator.core.service import POOL_ANNOTATION
from allocator.kube.services import ServiceWrite, ServiceWriter
from exalb.assignments.slicescope import SERVICE_LABEL
from exalb.kube.informer import Informer


class StatusOnlyApi:
    """Stores status from /status and metadata from the main resource, one version a write."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] = {
            "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "1"},
            "status": {},
        }
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def patch(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.sent.append((path, copy.deepcopy(body)))
        md = self.obj["metadata"]
        assert body["metadata"]["resourceVersion"] == md["resourceVersion"]
        if path.endswith("/status"):
            self.obj["status"] = body["status"]
        else:
            for kind in ("annotations", "labels"):
                md.setdefault(kind, {}).update(body["metadata"].get(kind) or {})
        md["resourceVersion"] = str(int(md["resourceVersion"]) + 1)
        return copy.deepcopy(self.obj)


def test_marks_dropped_by_status_follow_in_a_second_conditional_write() -> None:
    api = StatusOnlyApi()
    mirror = Informer("services", None)  # type: ignore[arg-type]  # never started: no lister
    w = ServiceWriter(api, mirror, lambda: 10.0, workers=1)  # type: ignore[arg-type]
    try:
        assert w.apply([ServiceWrite("ns", "web", ("198.51.100.1",), "p", "1")]) == {
            ("ns", "web"): None
        }
    finally:
        w.shutdown()
    (first, body1), (second, body2) = api.sent
    assert first.endswith("/status") and body1["metadata"]["resourceVersion"] == "1"
    assert not second.endswith("/status") and body2["metadata"]["resourceVersion"] == "2"
    md = api.obj["metadata"]
    assert md["annotations"][POOL_ANNOTATION] == "p" and md["labels"][SERVICE_LABEL] == "true"
