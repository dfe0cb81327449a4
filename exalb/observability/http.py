"""One small HTTP server per process: ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz``.

Health is a set of named checks so that a probe failure says *which* part is
unhealthy (for example ``exabgp: not running``) instead of a bare 500.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], str | None]  # None when healthy, else the reason


class HealthServer:
    """Serves metrics from ``registry`` and the named health and readiness checks."""

    def __init__(self, registry: CollectorRegistry, host: str = "0.0.0.0", port: int = 0) -> None:
        self.registry = registry
        self.liveness: dict[str, Check] = {}
        self.readiness: dict[str, Check] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body = generate_latest(server.registry)
                    self._send(200, body, CONTENT_TYPE_LATEST)
                elif self.path in ("/healthz", "/livez"):
                    self._checks(server.liveness)
                elif self.path == "/readyz":
                    self._checks({**server.liveness, **server.readiness})
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _checks(self, checks: dict[str, Check]) -> None:
                failed = {}
                for name, check in checks.items():
                    try:
                        reason = check()
                    except Exception as exc:  # a broken check is itself a failure
                        reason = f"check raised {exc!r}"
                    if reason:
                        failed[name] = reason
                if failed:
                    text = "".join(f"{k}: {v}\n" for k, v in sorted(failed.items()))
                    self._send(503, text.encode(), "text/plain")
                else:
                    self._send(200, b"ok\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every few seconds would drown the real logs

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
