"""Memory of two Kubernetes client layers: the ``kubernetes`` package and ``exalb.kube.rest``.

Run: ``.venv/bin/python -m bench.client_rss [--services N]``. Each variant runs in a fresh
interpreter and does what exalb does with a client: load a kubeconfig, list Services as raw
JSON (the informer's path), then read, replace and create a Lease (the elector's path, typed
objects for the package). A local HTTP server on 127.0.0.1 answers with canned objects, so only
the client side is measured. Printed: VmRSS and VmHWM after the work, in MiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testbed.binaries import ROOT
from testbed.procs import free_port

_PROBE = """
import re
def mem():
    s = open('/proc/self/status').read()
    return [round(int(re.search(k + r':\\s+(\\d+)', s)[1]) / 1024, 1) for k in ('VmRSS', 'VmHWM')]
import structlog, urllib3, yaml, json  # what both processes load anyway
"""

VARIANTS = {
    "baseline (python + structlog, urllib3, yaml)": "",
    "exalb.kube.rest": """
from exalb.kube import rest
api = rest.connect(KUBECONFIG)
api.request('GET', '/api/v1/services', query={'limit': 500}, preload=False).data
lease = api.get('/apis/coordination.k8s.io/v1/namespaces/x/leases/l')
api.replace('/apis/coordination.k8s.io/v1/namespaces/x/leases/l', lease)
api.create('/apis/coordination.k8s.io/v1/namespaces/x/leases', lease)
""",
    "kubernetes package": """
from kubernetes import client, config
cfg = client.Configuration()
config.load_kube_config(config_file=KUBECONFIG, client_configuration=cfg)
api = client.ApiClient(cfg)
client.CoreV1Api(api).list_service_for_all_namespaces(limit=500, _preload_content=False).data
coord = client.CoordinationV1Api(api)
lease = coord.read_namespaced_lease('l', 'x')
coord.replace_namespaced_lease('l', 'x', lease)
coord.create_namespaced_lease('x', lease)
""",
}


def _services(n: int) -> bytes:
    items = [
        {
            "metadata": {"name": f"s{i}", "namespace": "default", "resourceVersion": str(i + 1)},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": f"198.18.{i // 256}.{i % 256}"}]}},
        }
        for i in range(n)
    ]
    return json.dumps(
        {"kind": "ServiceList", "metadata": {"resourceVersion": "1"}, "items": items}
    ).encode()


_LEASE = json.dumps(
    {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": "x", "resourceVersion": "5"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
).encode()


def _server(services: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = services if "/services" in self.path else _LEASE
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = _reply

        def log_message(self, *_args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _kubeconfig(path: Path, port: int) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )


def measure(services: int, runs: int) -> dict[str, list[float]]:
    srv = _server(_services(services))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kc = Path(tmp) / "kubeconfig"
            _kubeconfig(kc, srv.server_address[1])
            out: dict[str, list[float]] = {}
            for name, work in VARIANTS.items():
                code = f"KUBECONFIG = {str(kc)!r}\n{_PROBE}{work}\nprint(*mem())"
                samples = []
                for _ in range(runs):
                    res = subprocess.run(
                        [sys.executable, "-c", code],
                        cwd=ROOT,
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    samples.append([float(x) for x in res.stdout.split()])
                out[name] = min(samples)  # least disturbed run
            return out
    finally:
        srv.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    figures = measure(args.services, args.runs)
    base = next(iter(figures.values()))[0]
    print(f"{'variant':48} {'VmRSS MiB':>10} {'VmHWM MiB':>10} {'over baseline':>14}")
    for name, (rss, hwm) in figures.items():
        print(f"{name:48} {rss:10.1f} {hwm:10.1f} {rss - base:+14.1f}")


if __name__ == "__main__":
    main()
