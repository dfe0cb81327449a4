"""Pods of the exalb image on the bed's nodes, shared by the real-node tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from testbed.nodes import EXALB_IMAGE, Bed, image_name
from testbed.procs import wait_for


def container(command: list[str], **extra: Any) -> dict[str, Any]:
    """A container of the exalb image, imported into each node's containerd, never pulled."""
    return {
        "name": "main",
        "image": image_name(EXALB_IMAGE),
        "imagePullPolicy": "Never",
        "command": command,
        **extra,
    }


def is_ready(pod: Any) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def ready_pods(bed: Bed, namespace: str, selector: str, count: int) -> list[Any]:
    """Wait until exactly ``count`` pods match ``selector`` and all are Ready; return them."""
    pods: list[Any] = []
    with bed.api_client() as api:
        core = client.CoreV1Api(api)

        def ready() -> bool:
            nonlocal pods
            pods = core.list_namespaced_pod(namespace, label_selector=selector).items
            return len(pods) == count and all(is_ready(p) for p in pods)

        wait_for(
            f"{count} ready pods {selector}",
            ready,
            timeout=90,
            interval=0.5,
            on_timeout=lambda: f"pods: {[p.status for p in pods]}\n{bed.logs()}",
        )
    return pods
