"""The one Kubernetes client of both processes: urllib3, JSON in, JSON out, list/watch streams.

Why not the ``kubernetes`` package: its generated models and auth plugins cost tens of
MiB of RSS once imported and used (bench/client_rss.py, bench/README.md) on every node,
inside the announcer's memory budget, and both processes read every object as a plain dict
anyway (the informer parses the bytes itself). See docs/architecture.md.

Configuration comes from a kubeconfig (static credentials: bearer token, token file,
client certificate) or from the in-cluster ServiceAccount. Credential plugins (``exec``,
``auth-provider``) and proxies are not supported and fail loudly at start-up rather than
at the first request. Every non-2xx answer is an :class:`ApiError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import structlog
import urllib3
import yaml

Obj = dict[str, Any]
Query = Mapping[str, str | int | bool]
Timeout = float | tuple[float, float] | urllib3.Timeout

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# client-go re-reads token files once a minute; bound tokens are refreshed well before expiry.
TOKEN_REFRESH_SECONDS = 60.0
MERGE_PATCH = "application/merge-patch+json"
# Connection errors (and a read error on an idempotent request, typically a keep-alive
# connection the server closed) are retried here; anything else is the caller's call.
RETRIES = urllib3.Retry(total=2, connect=2, read=1, status=0, redirect=0, other=0)
# A watch only reads, so a connection the far end has forgotten looks alive to it for ever.
# Seen on the real-node bed (test_bfd_failover.py): after a node's link was cut for seconds,
# every connection of its host-network pods to the Service's ClusterIP stayed established
# and received nothing again, while kubelet's, made to the API server directly, lived on.
# Keepalive probes after KEEPALIVE_IDLE s of silence draw a reset
# from such an end, or no answer at all; either ends the connection within
# KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES s, and the informer watches again.
# A live connection answers each probe: a few bytes per idle connection every 15 s.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES = 15, 5, 3
SOCKET_OPTIONS = [
    *urllib3.connection.HTTPConnection.default_socket_options,
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES),
]
DEFAULT_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)
LIST_TIMEOUT = urllib3.Timeout(connect=5.0, read=30.0)

log = structlog.get_logger("rest")


class ApiError(Exception):
    """The API server answered with a non-2xx status (``status``, ``reason``, raw ``body``)."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        super().__init__(status, reason, body)
        self.status = status
        self.reason = reason
        self.body = body

    @property
    def message(self) -> str:
        """The server's own explanation (its ``Status.message``), else the HTTP reason."""
        try:
            return str(json.loads(self.body)["message"])
        except (ValueError, KeyError, TypeError):
            return self.reason

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}"


class ConfigError(Exception):
    """No usable API server configuration (missing, malformed or unsupported)."""


@dataclass(frozen=True)
class Config:
    """Where the API server is and how to authenticate; secrets are kept out of ``repr``."""

    server: str
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    insecure: bool = False
    tls_server_name: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: bytes | None = field(default=None, repr=False)  # PEM
    key_data: bytes | None = field(default=None, repr=False)  # PEM


# --- configuration ---------------------------------------------------------------------
def load(kubeconfig: str | None = None) -> Config:
    """``kubeconfig``, else ``$KUBECONFIG``, else the in-cluster ServiceAccount.

    No ``~/.kube/config`` fallback: a process on a node must never pick up an admin's
    credentials by accident.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG")
    return from_kubeconfig(path) if path else in_cluster()


def in_cluster(sa_dir: Path = SERVICE_ACCOUNT_DIR, env: Mapping[str, str] = os.environ) -> Config:
    """The pod's ServiceAccount: the token file is re-read by the client as it rotates."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError(
            "no kubeconfig given and not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)"
        )
    token = sa_dir / "token"
    if not token.is_file():
        raise ConfigError(f"in-cluster, but no ServiceAccount token at {token}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return Config(
        server=f"https://{host}:{port}", ca_file=str(sa_dir / "ca.crt"), token_file=str(token)
    )


def from_kubeconfig(paths: str) -> Config:
    """The current context of a kubeconfig (or a ``:``-separated list of them, merged).

    Merging follows kubectl: the first file that names a cluster, user or context wins,
    as does the first ``current-context``; relative paths are relative to the file that
    holds them.
    """
    files = [Path(p).expanduser() for p in paths.split(os.pathsep) if p]
    existing = [f for f in files if f.is_file()]
    if not existing:
        raise ConfigError(f"kubeconfig not found: {paths}")
    docs = [(f.parent, _read_yaml(f)) for f in existing]
    current = next((str(d["current-context"]) for _, d in docs if d.get("current-context")), "")
    if not current:
        raise ConfigError(f"kubeconfig {paths} has no current-context")
    context, _ = _entry(docs, "contexts", "context", current)
    cluster, cluster_dir = _entry(docs, "clusters", "cluster", str(context.get("cluster", "")))
    user: Obj = {}
    user_dir = cluster_dir
    if context.get("user"):
        user, user_dir = _entry(docs, "users", "user", str(context["user"]))
    return _config(cluster, cluster_dir, user, user_dir)


def _read_yaml(path: Path) -> Obj:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    return doc


def _entry(docs: list[tuple[Path, Obj]], section: str, key: str, name: str) -> tuple[Obj, Path]:
    """The first entry called ``name`` in ``section`` across ``docs``, with its file's dir."""
    for base, doc in docs:
        for item in doc.get(section) or []:
            if isinstance(item, dict) and item.get("name") == name:
                return dict(item.get(key) or {}), base
    raise ConfigError(f"kubeconfig has no {section[:-1]} named {name!r}")


_UNSUPPORTED_USER = ("exec", "auth-provider", "username", "password")


def _config(cluster: Obj, cluster_dir: Path, user: Obj, user_dir: Path) -> Config:
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError("kubeconfig cluster has no server")
    if cluster.get("proxy-url"):
        raise ConfigError("kubeconfig proxy-url is not supported by exalb's client")
    unsupported = [k for k in _UNSUPPORTED_USER if user.get(k)]
    if unsupported:
        raise ConfigError(
            f"kubeconfig user uses {', '.join(unsupported)}: exalb's client supports a bearer "
            "token, a token file or a client certificate only"
        )
    ca_data = _b64(cluster, "certificate-authority-data")
    return Config(
        server=server.rstrip("/"),
        ca_file=_path(cluster, "certificate-authority", cluster_dir),
        ca_data=ca_data.decode() if ca_data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        token=user.get("token") or None,
        token_file=_path(user, "tokenFile", user_dir),
        cert_file=_path(user, "client-certificate", user_dir),
        key_file=_path(user, "client-key", user_dir),
        cert_data=_b64(user, "client-certificate-data"),
        key_data=_b64(user, "client-key-data"),
    )


def _path(section: Obj, key: str, base: Path) -> str | None:
    value = section.get(key)
    return str(base / Path(str(value)).expanduser()) if value else None


def _b64(section: Obj, key: str) -> bytes | None:
    value = section.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"kubeconfig {key} is not valid base64") from exc


# --- credentials -----------------------------------------------------------------------
class TokenFile:
    """A bearer token re-read from its file every ``refresh`` seconds.

    Why: projected ServiceAccount tokens are bound and short-lived; the kubelet rewrites
    the file well before expiry, and a token read once at start-up would start failing
    with 401 after an hour or so. A failed re-read keeps the last good token.
    """

    def __init__(
        self,
        path: str,
        refresh: float = TOKEN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = Path(path)
        self._refresh = refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._read_at: float | None = None

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._refresh:
                self._reread(now)
            return self._token

    def _reread(self, now: float) -> None:
        try:
            self._token = self._path.read_text().strip()
            self._read_at = now
        except OSError as exc:
            if self._read_at is None:
                raise ConfigError(f"cannot read token file {self._path}: {exc}") from exc
            log.warning("token file unreadable; keeping the last token", error=str(exc))


def _token_source(cfg: Config) -> Callable[[], str] | None:
    # Like client-go, a token file wins over an inline token: it is the one that rotates.
    if cfg.token_file:
        return TokenFile(cfg.token_file)
    token = cfg.token
    return (lambda: token) if token else None


def ssl_context(cfg: Config) -> ssl.SSLContext:
    """Server verification and the client certificate, both loaded once, in memory."""
    ctx = ssl.create_default_context(cafile=cfg.ca_file, cadata=cfg.ca_data)
    if cfg.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file or cfg.cert_data:
        _load_client_cert(ctx, cfg)
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, cfg: Config) -> None:
    if cfg.cert_file and not cfg.cert_data and not cfg.key_data:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        return
    # ssl only loads key material from files: write the inline data to a private temp
    # file just long enough to load it.
    cert = cfg.cert_data or Path(str(cfg.cert_file)).read_bytes()
    key = cfg.key_data or (Path(cfg.key_file).read_bytes() if cfg.key_file else b"")
    fd, tmp = tempfile.mkstemp(prefix="exalb-client-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert.rstrip(b"\n") + b"\n" + key)
        ctx.load_cert_chain(tmp)
    finally:
        os.unlink(tmp)


# --- paths -----------------------------------------------------------------------------
def resource_path(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    """``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...`` otherwise."""
    root = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    parts = [root]
    if namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
    return "/".join(parts)


# --- the client ------------------------------------------------------------------------
class Client:
    """Thread-safe: one connection pool shared by informers, writes, the lease and Events.

    Every JSON verb takes ``timeout`` (the default otherwise) and ``retry_connection``:
    False sends exactly one HTTP attempt, for callers that re-check a condition (the
    lease) before each attempt themselves.
    """

    def __init__(
        self,
        cfg: Config,
        pool_size: int = 16,
        timeout: Timeout = DEFAULT_TIMEOUT,
        user_agent: str = "exalb",
    ) -> None:
        self.server = cfg.server
        self._token = _token_source(cfg)
        self._timeout = timeout
        self._user_agent = user_agent
        pool_kw: dict[str, Any] = {
            "maxsize": pool_size,
            "block": False,
            "socket_options": SOCKET_OPTIONS,
        }
        if cfg.server.startswith("https:"):
            pool_kw["ssl_context"] = ssl_context(cfg)
            if cfg.tls_server_name:
                pool_kw["server_hostname"] = cfg.tls_server_name
            if cfg.insecure:
                log.warning("TLS verification of the API server is off (insecure-skip-tls-verify)")
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._http = urllib3.PoolManager(num_pools=2, **pool_kw)

    # --- JSON requests ---------------------------------------------------
    def get(
        self,
        path: str,
        query: Query | None = None,
        *,
        timeout: Timeout | None = None,
        retry_connection: bool = True,
    ) -> Obj:
        return self._call("GET", path, None, timeout, retry_connection, query=query)

    def create(
        self, path: str, body: Obj, *, timeout: Timeout | None = None, retry_connection: bool = True
    ) -> Obj:
        return self._call("POST", path, body, timeout, retry_connection)

    def replace(
        self, path: str, body: Obj, *, timeout: Timeout | None = None, retry_connection: bool = True
    ) -> Obj:
        """A PUT: with ``metadata.resourceVersion`` in ``body`` it is conditional (409 if stale)."""
        return self._call("PUT", path, body, timeout, retry_connection)

    def patch(
        self, path: str, body: Obj, *, timeout: Timeout | None = None, retry_connection: bool = True
    ) -> Obj:
        """A JSON merge patch (RFC 7386): works for every kind, custom resources included.

        A ``metadata.resourceVersion`` in ``body`` makes it conditional (409 if stale).
        """
        return self._call("PATCH", path, body, timeout, retry_connection, MERGE_PATCH)

    def delete(self, path: str, *, timeout: Timeout | None = None) -> Obj:
        return self._call("DELETE", path, None, timeout, True)

    def _call(
        self,
        method: str,
        path: str,
        body: Obj | None,
        timeout: Timeout | None,
        retry_connection: bool,
        content_type: str = "application/json",
        query: Query | None = None,
    ) -> Obj:
        retries = RETRIES if retry_connection else False
        resp = self.request(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            timeout=timeout,
            retries=retries,
        )
        return _json(resp)

    def lister(
        self, path: str, label_selector: str | None = None, field_selector: str | None = None
    ) -> Lister:
        """The collection at ``path`` as the informer lists and watches it."""
        return Lister(self, path, label_selector, field_selector)

    # --- the one place that talks HTTP ------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
        timeout: Timeout | None = None,
        preload: bool = True,
        retries: urllib3.Retry | bool = RETRIES,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; a non-2xx answer raises :class:`ApiError` (body read, conn freed)."""
        url = self.server + path
        if query:
            url += "?" + urlencode({k: _query_value(v) for k, v in query.items()})
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        token = self._token() if self._token else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        resp = self._http.request(
            method,
            url,
            body=data,
            headers=headers,
            timeout=_timeout(timeout if timeout is not None else self._timeout),
            retries=retries,
            preload_content=preload,
        )
        if not 200 <= resp.status < 300:
            text = resp.data.decode("utf-8", "replace")
            resp.release_conn()
            raise ApiError(resp.status, resp.reason or "", text)
        return resp


class Lister:
    """One collection (a path and fixed selectors), listed in pages and watched.

    It is the ``ListWatch`` that ``exalb.kube.informer.Informer`` takes.
    """

    def __init__(
        self,
        client: Client,
        path: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self.path = path
        self._client = client
        self._fixed: dict[str, str | int | bool] = {}
        if label_selector:
            self._fixed["labelSelector"] = label_selector
        if field_selector:
            self._fixed["fieldSelector"] = field_selector

    def list(self, limit: int, continue_token: str | None = None) -> Obj:
        """One page of the collection, as the API's ``*List`` object."""
        query = dict(self._fixed, limit=limit)
        if continue_token:
            query["continue"] = continue_token
        return _json(self._client.request("GET", self.path, query=query, timeout=LIST_TIMEOUT))

    def watch(self, resource_version: str, timeout_seconds: int) -> WatchStream:
        """Watch events from ``resource_version`` on, bookmarks included."""
        query = dict(self._fixed, watch=True, allowWatchBookmarks=True)
        query["timeoutSeconds"] = timeout_seconds
        if resource_version:
            query["resourceVersion"] = resource_version
        resp = self._client.request(
            "GET",
            self.path,
            query=query,
            timeout=urllib3.Timeout(connect=5.0, read=timeout_seconds + 30.0),
            preload=False,
        )
        return WatchStream(resp)


class WatchStream:
    """The events of one watch request, decoded line by line as they arrive."""

    def __init__(self, resp: urllib3.BaseHTTPResponse) -> None:
        self._resp = resp

    def __iter__(self) -> Iterator[Obj]:
        buf = b""
        for chunk in self._resp.stream(amt=65536, decode_content=False):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
        if buf.strip():
            yield json.loads(buf)

    def abort(self) -> None:
        """Wake a reader blocked on this stream, from another thread.

        Closing the response from here would block on the reader's lock; shutting the
        socket down makes the reader's ``recv`` return instead.
        """
        sock = getattr(getattr(self._resp, "connection", None), "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._resp.release_conn()


def _query_value(v: str | int | bool) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def _timeout(t: Timeout) -> urllib3.Timeout:
    """Seconds for connect and read together, a (connect, read) pair, or a urllib3 Timeout."""
    if isinstance(t, urllib3.Timeout):
        return t
    if isinstance(t, tuple):
        return urllib3.Timeout(connect=t[0], read=t[1])
    return urllib3.Timeout(total=t)


def _json(resp: urllib3.BaseHTTPResponse) -> Obj:
    data = resp.data
    if not data:
        return {}
    obj: Obj = json.loads(data)
    return obj


def connect(
    kubeconfig: str | None = None, pool_size: int = 16, user_agent: str = "exalb"
) -> Client:
    """A client for ``kubeconfig`` / ``$KUBECONFIG`` / in-cluster (see :func:`load`)."""
    return Client(load(kubeconfig), pool_size=pool_size, user_agent=user_agent)
