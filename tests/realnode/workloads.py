"""Pods of the exalb image on the bed's nodes, shared by the real-node tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import yaml
from kubernetes import client

from testbed.nodes import EXALB_IMAGE, Bed, image_name
from testbed.procs import wait_for


@contextmanager
def new_namespace(bed: Bed) -> Iterator[str]:
    """A namespace whose ``default`` ServiceAccount exists (admission requires it for pods)."""
    name = f"realnode-{uuid.uuid4().hex[:6]}"
    with bed.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        wait_for(
            f"ServiceAccount {name}/default",
            lambda: bool(core.list_namespaced_service_account(name).items),
            timeout=30,
            interval=0.2,
        )
        try:
            yield name
        finally:
            core.delete_namespace(name)


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


def apply(bed: Bed, *objects: Mapping[str, Any]) -> None:
    manifest = bed.workdir / "test-objects.yaml"
    manifest.write_text(yaml.safe_dump_all([dict(o) for o in objects]))
    bed.kubectl("apply", "-f", str(manifest))


# Where the web pods' readiness probe looks: `rm` it and the pod turns unready.
READY_FILE = "/tmp/ready"
# Seconds a web pod keeps serving after SIGTERM, as a well-behaved server drains: what a
# client then sees of a deletion is the data path's doing, not the server's.
DRAIN = 5
# GET / answers {"pod", "node", "peer"}: who answered and the address the request came
# from (the client's own when the source is preserved). GET /ready is the probe. One
# asyncio loop, no thread or header parsing per request: on the shared 2-core machine a
# server that needs more CPU per request falls behind whenever other processes start, and
# its timeouts would be counted against the data path.
WEB_SERVER = f"""
import asyncio, json, os, signal, socket

WHO = dict(pod=os.environ["POD_NAME"], node=os.environ["NODE_NAME"])

async def answer(reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\\r\\n\\r\\n"), 10)
        body = b""
        if head.split(b" ", 2)[1] == b"/ready":
            status = b"200 OK" if os.path.exists("{READY_FILE}") else b"503 Unavailable"
        else:
            status = b"200 OK"
            peer = writer.get_extra_info("peername")[0].removeprefix("::ffff:")
            body = json.dumps(dict(WHO, peer=peer)).encode()
        length = str(len(body)).encode()
        writer.write(b"HTTP/1.0 " + status + b"\\r\\nContent-Length: " + length
                     + b"\\r\\n\\r\\n" + body)
        await writer.drain()
    except (OSError, IndexError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        pass
    finally:
        writer.close()

async def main():
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("::", 8080))
    server = await asyncio.start_server(answer, sock=listener, backlog=128)
    loop = asyncio.get_running_loop()
    # SIGTERM: keep serving {DRAIN} s more, as a well-behaved server drains, then exit.
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.call_later({DRAIN}, os._exit, 0))
    open("{READY_FILE}", "w").close()
    await server.serve_forever()

asyncio.run(main())
"""


def web(bed: Bed, namespace: str, replicas: int, node: str | None = None) -> None:
    """HTTP servers naming their pod and node, Ready while READY_FILE is: Deployment ``web``,
    one pod per node at most; with ``node``, Deployment ``web-<node>``, every pod on that node
    (the same ``app: web`` label, so one Service selects both kinds)."""
    labels = {"app": "web"}
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    server = container(
        ["python3", "-c", WEB_SERVER],
        env=env,
        readinessProbe={
            "httpGet": {"path": "/ready", "port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 1,
            # A removed READY_FILE answers 503 at once; a slow answer on a loaded machine
            # must not count as unready (the default, 1 s, flipped both pods at once).
            "timeoutSeconds": 5,
        },
    )
    spread = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}
            ]
        }
    }
    placement: dict[str, Any] = (
        {"affinity": spread} if node is None else {"nodeSelector": {"kubernetes.io/hostname": node}}
    )
    name = "web" if node is None else f"web-{node}"
    pod_labels = labels if node is None else {**labels, "pinned": node}
    apply(
        bed,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": pod_labels},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "containers": [server],
                        **placement,
                        "terminationGracePeriodSeconds": DRAIN + 5,
                    },
                },
            },
        },
    )
