"""Pods of the exalb image on the bed's nodes, shared by the real-node tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
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
# from (the client's own when the source is preserved). GET /ready is the probe.
WEB_SERVER = f"""
import json, os, signal, socket, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ready":
            code = 200 if os.path.exists("{READY_FILE}") else 503
            body = b""
        else:
            code = 200
            peer = self.client_address[0].removeprefix("::ffff:")
            body = json.dumps(dict(pod=os.environ["POD_NAME"], node=os.environ["NODE_NAME"],
                                   peer=peer)).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

def drain(*_):
    threading.Thread(target=lambda: (time.sleep({DRAIN}), os._exit(0))).start()

signal.signal(signal.SIGTERM, drain)
open("{READY_FILE}", "w").close()
Server(("::", 8080), Handler).serve_forever()
"""


def web(bed: Bed, namespace: str, replicas: int) -> None:
    """HTTP servers naming their pod and node, one per node at most, Ready while READY_FILE is."""
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
        },
    )
    spread = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}}
            ]
        }
    }
    apply(
        bed,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [server],
                        "affinity": spread,
                        "terminationGracePeriodSeconds": DRAIN + 5,
                    },
                },
            },
        },
    )
