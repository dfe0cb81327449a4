"""exalb.kube.rest: kubeconfig and in-cluster configuration, TLS and credentials, errors, listers.

Requests go to a local HTTP(S) server that records what it received (certificates made
with openssl here), so every check crosses a real socket and a real TLS handshake. The
client against the real kube-apiserver is covered by the announcer integration tests.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
import yaml

from exalb.kube import rest, retry
from exalb.kube.rest import ApiError, Client, Config, ConfigError, TokenFile
from testbed.controlplane import ControlPlane
from testbed.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


# --- a recording server ------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON, or bytes as is
    chunks: list[bytes] = field(default_factory=list)  # streamed after body, then close


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_cn: str | None


class Server:
    """Answers every request with the next scripted :class:`Reply` (default: 200 ``{}``)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self.replies: list[Reply] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def serve(self) -> None:
                outer.record(self)
                reply = outer.replies.pop(0) if outer.replies else Reply()
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = body.encode() if isinstance(body, str) else body
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                if not reply.chunks:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                for chunk in reply.chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def record(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        cert = h.connection.getpeercert() if isinstance(h.connection, ssl.SSLSocket) else None
        cn = None
        if cert:
            subject = cast("tuple[tuple[tuple[str, str], ...], ...]", cert["subject"])
            cn = next(v for rdn in subject for k, v in rdn if k == "commonName")
        self.seen.append(
            Seen(
                h.command,
                url.path,
                parse_qs(url.query),
                dict(h.headers),
                h.rfile.read(length) if length else b"",
                cn,
            )
        )

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --- certificates ------------------------------------------------------------------------
@dataclass
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def b64(self, name: str) -> str:
        return base64.b64encode(self.path(name).read_bytes()).decode()

    def server_tls(self, client_certs: bool) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.path("server.crt"), self.path("server.key"))
        if client_certs:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.path("ca.crt"))
        return ctx


def _openssl(*args: str | Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is required (the control plane needs it too)"
    subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)


def _issue(d: Path, name: str, cn: str, ext: str | None) -> None:
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req",
        "-new",
        *key,
        "-keyout",
        d / f"{name}.key",
        "-out",
        d / f"{name}.csr",
        "-subj",
        f"/CN={cn}",
    )
    extra: list[str | Path] = []
    if ext:
        (d / f"{name}.ext").write_text(ext + "\n")
        extra = ["-extfile", d / f"{name}.ext"]
    _openssl(
        "x509",
        "-req",
        "-in",
        d / f"{name}.csr",
        "-CA",
        d / "ca.crt",
        "-CAkey",
        d / "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        d / f"{name}.crt",
        *extra,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        d / "ca.key",
        "-out",
        d / "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
    )
    _issue(d, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:apiserver.test")
    _issue(d, "client", "exalb-client", None)
    return Pki(d)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


# --- configuration -----------------------------------------------------------------------
def test_the_testbeds_kubeconfig_token_and_ca_file(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path, api_port=6443)
    path = cp.write_kubeconfig(tmp_path / "announcer.kubeconfig", "sa-token")
    cfg = rest.from_kubeconfig(str(path))
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.ca_file == str(cp.ca_file)
    assert cfg.token == "sa-token"
    assert not cfg.insecure and cfg.token_file is None and cfg.cert_file is None
    assert "sa-token" not in repr(cfg)


def test_token_file_is_relative_to_the_kubeconfig_wins_and_is_reread(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first\n")
    path = kubeconfig(
        tmp_path / "kc", {"server": "https://h:1"}, {"token": "inline", "tokenFile": "token"}
    )
    cfg = rest.from_kubeconfig(str(path))
    assert cfg.token_file == str(tmp_path / "token")
    now = [0.0]
    tokens = TokenFile(str(cfg.token_file), refresh=60, clock=lambda: now[0])
    assert tokens() == "first"
    (tmp_path / "token").write_text("second\n")  # the kubelet rotated it
    now[0] = 59.0
    assert tokens() == "first"
    now[0] = 60.0
    assert tokens() == "second"
    (tmp_path / "token").unlink()
    now[0] = 200.0
    assert tokens() == "second"  # an unreadable file keeps the last good token


def test_token_file_is_sent_over_the_token(server: Server, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file")
    cfg = Config(server=server.url, token="inline", token_file=str(tmp_path / "token"))
    Client(cfg).get("/api/v1/nodes/n1")
    assert server.seen[0].headers["Authorization"] == "Bearer from-file"
    assert server.seen[0].path == "/api/v1/nodes/n1"


def test_ca_and_client_certificate_data(pki: Pki, tmp_path: Path) -> None:
    srv = Server(pki.server_tls(client_certs=True))
    try:
        path = kubeconfig(
            tmp_path / "kc",
            {"server": srv.url, "certificate-authority-data": pki.b64("ca.crt")},
            {
                "client-certificate-data": pki.b64("client.crt"),
                "client-key-data": pki.b64("client.key"),
            },
        )
        cfg = rest.from_kubeconfig(str(path))
        assert cfg.ca_data is not None and "BEGIN CERTIFICATE" in cfg.ca_data
        assert Client(cfg).get("/version") == {}
    finally:
        srv.close()
    assert srv.seen[0].client_cn == "exalb-client"
    assert "Authorization" not in srv.seen[0].headers


def test_ca_and_client_certificate_files_with_a_token(pki: Pki, tmp_path: Path) -> None:
    srv = Server(pki.server_tls(client_certs=True))
    try:
        d = pki.dir
        path = kubeconfig(
            d / "files.kubeconfig",  # relative paths: next to the kubeconfig
            {"server": srv.url, "certificate-authority": "ca.crt"},
            {"client-certificate": "client.crt", "client-key": "client.key", "token": "t0"},
        )
        Client(rest.from_kubeconfig(str(path))).get("/version")
    finally:
        srv.close()
    assert srv.seen[0].client_cn == "exalb-client"
    assert srv.seen[0].headers["Authorization"] == "Bearer t0"


def test_an_untrusted_server_is_refused_unless_verification_is_off(
    pki: Pki, tmp_path: Path
) -> None:
    srv = Server(pki.server_tls(client_certs=False))
    try:
        strict = rest.from_kubeconfig(
            str(kubeconfig(tmp_path / "strict", {"server": srv.url}, {"token": "t"}))
        )
        with pytest.raises(urllib3.exceptions.MaxRetryError) as err:
            Client(strict).get("/version")
        assert isinstance(err.value.reason, urllib3.exceptions.SSLError)
        insecure = rest.from_kubeconfig(
            str(
                kubeconfig(
                    tmp_path / "insecure",
                    {"server": srv.url, "insecure-skip-tls-verify": True},
                    {"token": "t"},
                )
            )
        )
        assert insecure.insecure
        assert Client(insecure).get("/version") == {}
    finally:
        srv.close()


@pytest.mark.parametrize(("name", "ok"), [("apiserver.test", True), ("other.test", False)])
def test_tls_server_name_is_what_the_certificate_must_match(pki: Pki, name: str, ok: bool) -> None:
    srv = Server(pki.server_tls(client_certs=False))
    try:
        cfg = Config(server=srv.url, ca_file=str(pki.path("ca.crt")), tls_server_name=name)
        if ok:
            assert Client(cfg).get("/version") == {}
        else:
            with pytest.raises(urllib3.exceptions.MaxRetryError, match=r"other\.test"):
                Client(cfg).get("/version")
    finally:
        srv.close()


def test_kubeconfig_lists_merge_first_wins(tmp_path: Path) -> None:
    a = kubeconfig(tmp_path / "a", {"server": "https://a:1"}, {"token": "ta"})
    b = tmp_path / "b"
    b.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {"name": "c", "cluster": {"server": "https://b:1"}},
                    {"name": "other", "cluster": {"server": "https://other:1"}},
                ],
                "contexts": [{"name": "o", "context": {"cluster": "other", "user": "u"}}],
                "current-context": "o",
            }
        )
    )
    cfg = rest.from_kubeconfig(f"{tmp_path / 'missing'}:{a}:{b}")
    assert (cfg.server, cfg.token) == ("https://a:1", "ta")  # a's current-context, a's "c"
    cfg = rest.from_kubeconfig(f"{b}:{a}")
    assert (cfg.server, cfg.token) == ("https://other:1", "ta")


@pytest.mark.parametrize(
    ("user", "cluster", "message"),
    [
        ({"exec": {"command": "aws"}}, {}, "exec"),
        ({"auth-provider": {"name": "oidc"}}, {}, "auth-provider"),
        ({}, {"proxy-url": "http://proxy:3128"}, "proxy-url"),
        ({"client-key-data": "not base64!"}, {}, "base64"),
    ],
)
def test_unsupported_or_broken_kubeconfigs_fail_at_load(
    tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any], message: str
) -> None:
    path = kubeconfig(tmp_path / "kc", {"server": "https://h:1", **cluster}, user)
    with pytest.raises(ConfigError, match=message):
        rest.from_kubeconfig(str(path))


def test_missing_kubeconfig_or_context(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        rest.from_kubeconfig(str(tmp_path / "nope"))
    (tmp_path / "kc").write_text(yaml.safe_dump({"clusters": []}))
    with pytest.raises(ConfigError, match="current-context"):
        rest.from_kubeconfig(str(tmp_path / "kc"))


def test_in_cluster(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    cfg = rest.in_cluster(tmp_path, env)
    assert cfg.server == "https://10.96.0.1:443"
    assert cfg.ca_file == str(tmp_path / "ca.crt")
    assert cfg.token_file == str(tmp_path / "token") and cfg.token is None
    v6 = rest.in_cluster(tmp_path, {**env, "KUBERNETES_SERVICE_HOST": "fd00::1"})
    assert v6.server == "https://[fd00::1]:443"
    with pytest.raises(ConfigError, match="not in a cluster"):
        rest.in_cluster(tmp_path, {})


def test_load_prefers_the_flag_then_kubeconfig_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = kubeconfig(tmp_path / "flag", {"server": "https://flag:1"}, {})
    env = kubeconfig(tmp_path / "env", {"server": "https://env:1"}, {})
    monkeypatch.setenv("KUBECONFIG", str(env))
    assert rest.load(str(flag)).server == "https://flag:1"
    assert rest.load(None).server == "https://env:1"
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="not in a cluster"):
        rest.load(None)


# --- requests and errors -----------------------------------------------------------------
def test_writes_send_json_with_the_right_verb_and_content_type(server: Server) -> None:
    api = Client(Config(server=server.url))
    server.replies = [Reply(201, {"kind": "X"}), Reply(), Reply(), Reply()]
    path = rest.resource_path("exalb.io/v1alpha1", "bgpsessionstatuses", "ns", "n 1")
    assert path == "/apis/exalb.io/v1alpha1/namespaces/ns/bgpsessionstatuses/n%201"
    assert api.create(path, {"a": 1}) == {"kind": "X"}
    api.replace(path, {"b": 2})
    api.patch(path, {"status": {"c": 3}})
    api.delete(path)
    got = [(s.method, s.headers.get("Content-Type"), s.body) for s in server.seen]
    assert got == [
        ("POST", "application/json", b'{"a": 1}'),
        ("PUT", "application/json", b'{"b": 2}'),
        ("PATCH", "application/merge-patch+json", b'{"status": {"c": 3}}'),
        ("DELETE", None, b""),
    ]
    assert {s.path for s in server.seen} == {
        "/apis/exalb.io/v1alpha1/namespaces/ns/bgpsessionstatuses/n%201"
    }


def _status_body(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "status": "Failure", "message": message, "code": code}


def test_api_errors_carry_status_reason_and_the_servers_message(server: Server) -> None:
    api = Client(Config(server=server.url))
    server.replies = [Reply(404, _status_body(404, 'nodes "n1" not found')), Reply(503, b"busy")]
    with pytest.raises(ApiError) as missing:
        api.get("/api/v1/nodes/n1")
    assert (missing.value.status, missing.value.reason) == (404, "Not Found")
    assert json.loads(missing.value.body)["code"] == 404
    assert retry.describe(missing.value) == 'HTTP 404: nodes "n1" not found'
    assert not retry.transient(missing.value)
    with pytest.raises(ApiError) as busy:
        api.get("/api/v1/nodes/n1")
    assert retry.describe(busy.value) == "HTTP 503: Service Unavailable"
    assert retry.transient(busy.value)


@pytest.mark.parametrize(("status", "transient"), [(429, True), (500, True), (409, False)])
def test_api_errors_are_transient_only_when_retrying_can_help(status: int, transient: bool) -> None:
    exc = ApiError(status, "Reason", json.dumps(_status_body(status, "why")))
    assert retry.status_of(exc) == status
    assert retry.transient(exc) is transient
    assert retry.describe(exc) == f"HTTP {status}: why"
    assert retry.status_of(ValueError("x")) is None


def test_an_unreachable_server_is_transient() -> None:
    api = Client(Config(server=f"http://127.0.0.1:{free_port()}"), timeout=2.0)
    with pytest.raises(urllib3.exceptions.HTTPError) as err:
        api.get("/version")
    assert retry.transient(err.value)
    assert retry.status_of(err.value) is None


def test_lister_lists_pages_and_watches_with_the_fixed_selectors(server: Server) -> None:
    api = Client(Config(server=server.url))
    lister = api.lister("/api/v1/configmaps", label_selector="a=b", field_selector="x=y")
    server.replies = [
        Reply(body={"kind": "ConfigMapList", "items": [], "metadata": {"resourceVersion": "7"}}),
        Reply(
            body=b'{"type": "ADDED", "object": {"metadata": {"name": "a"}}}\n{"type": "BOO',
            chunks=[b'KMARK", "object": {"metadata": {"resourceVersion": "9"}}}\n'],
        ),
    ]
    assert lister.list(500, "tok")["metadata"]["resourceVersion"] == "7"
    stream = lister.watch("7", 300)
    try:
        events = list(stream)
    finally:
        stream.close()
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    one = {k: v[0] for k, v in server.seen[0].query.items()}
    assert one == {
        "labelSelector": "a=b",
        "fieldSelector": "x=y",
        "limit": "500",
        "continue": "tok",
    }
    two = {k: v[0] for k, v in server.seen[1].query.items()}
    assert two == {
        "labelSelector": "a=b",
        "fieldSelector": "x=y",
        "watch": "true",
        "resourceVersion": "7",
        "allowWatchBookmarks": "true",
        "timeoutSeconds": "300",
    }


def _count_dropped_connections() -> tuple[str, list[int], threading.Event]:
    """A server that reads each request and closes the connection without answering."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    accepted = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            conn.recv(65536)
            conn.close()
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", accepted, stop


@pytest.mark.parametrize(("retry_connection", "attempts"), [(False, 1), (True, 2)])
def test_only_a_write_sent_once_is_left_to_the_callers_retry_loop(
    retry_connection: bool, attempts: int
) -> None:
    """``retry_connection=False``: one HTTP attempt; the caller re-checks the lease per try."""
    url, accepted, stop = _count_dropped_connections()
    try:
        api = Client(Config(server=url), timeout=2.0)
        with pytest.raises(urllib3.exceptions.HTTPError):
            api.replace("/api/v1/namespaces/a/configmaps/b", {}, retry_connection=retry_connection)
        assert accepted[0] == attempts
    finally:
        stop.set()


# --- the processes' imports ---------------------------------------------------------------
@pytest.mark.parametrize("module", ["announcer.main", "allocator.main"])
def test_neither_process_imports_the_kubernetes_client(module: str) -> None:
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's (pytest's) peak across exec.
    code = (
        "import re, sys\n"
        f"import {module}\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes')\n"
        "print(hwm, len(bad), bad[:5])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split(maxsplit=2)
    rss_kib, count = int(out[0]), int(out[1])
    assert count == 0, f"import {module} loaded kubernetes {out[2]} (peak RSS {rss_kib} KiB)"


def test_a_watch_connection_sends_keepalive_probes_so_a_forgotten_one_ends(
    server: Server,
) -> None:
    """A watch only reads: without probes, a connection whose far end forgot it (a NAT entry
    lost in a network cut) would wait for events for ever."""
    api = Client(Config(server=server.url))
    server.replies = [Reply(body=b'{"type": "BOOKMARK", "object": {"metadata": {}}}\n')]
    stream = api.lister("/api/v1/services").watch("1", 300)
    try:
        # The test server answers HTTP/1.0, so the connection has handed its socket to the
        # response it streams: http.client's reader over the socket.
        sock = stream._resp._fp.fp.raw._sock  # type: ignore[attr-defined]
        options = {
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "probes": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        }
        list(stream)
    finally:
        stream.close()
    assert options == {
        "keepalive": 1,
        "idle": rest.KEEPALIVE_IDLE,
        "interval": rest.KEEPALIVE_INTERVAL,
        "probes": rest.KEEPALIVE_PROBES,
    }
    assert rest.KEEPALIVE_IDLE + rest.KEEPALIVE_INTERVAL * rest.KEEPALIVE_PROBES <= 60
