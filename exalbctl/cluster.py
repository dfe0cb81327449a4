"""The one place exalbctl talks to the API server, through ``exalb.kube.rest``.

Read-only by construction: it only lists. Every failure becomes a :class:`ClusterError`
whose text a person can act on (which server, which resource, what it answered), so the
commands never show a traceback for an unreachable or forbidden cluster.

Which kubeconfig, the way kubectl picks it: ``--kubeconfig``, else ``$KUBECONFIG`` (a
``:``-separated list, merged), else ``~/.kube/config`` if it exists, else the in-cluster
ServiceAccount; ``--context`` overrides the current context.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from exalb.kube import rest

Obj = dict[str, Any]
PAGE_SIZE = 500
DEFAULT_KUBECONFIG = Path("~/.kube/config")


class ClusterError(Exception):
    """The cluster could not be read: no configuration, unreachable, or an API refusal."""


def kubeconfig_paths(flag: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """kubectl's precedence; None means in-cluster."""
    if flag:
        return flag
    if env.get("KUBECONFIG"):
        return env["KUBECONFIG"]
    default = DEFAULT_KUBECONFIG.expanduser()
    return str(default) if default.is_file() else None


def load_config(kubeconfig: str | None, context: str | None) -> rest.Config:
    paths = kubeconfig_paths(kubeconfig)
    try:
        if paths is None:
            if context:
                raise ClusterError(f"--context {context}: no kubeconfig found to look it up in")
            return rest.in_cluster()
        if not context:
            return rest.from_kubeconfig(paths)
        # The first current-context of a merged list wins (kubectl's rule, which
        # rest.from_kubeconfig follows): a one-line file put first selects the context.
        with tempfile.TemporaryDirectory(prefix="exalbctl-") as tmp:
            first = Path(tmp) / "context"
            first.write_text(f"current-context: {context}\n")
            return rest.from_kubeconfig(f"{first}{os.pathsep}{paths}")
    except rest.ConfigError as exc:
        raise ClusterError(f"kubeconfig: {exc}") from exc


@dataclass
class Cluster:
    """Lists objects; one client, one server."""

    client: rest.Client

    def list(
        self,
        api_version: str,
        plural: str,
        namespace: str | None = None,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Every object of a kind (across all namespaces if ``namespace`` is None), paged."""
        path = rest.resource_path(api_version, plural, namespace)
        query: dict[str, str | int | bool] = {"limit": PAGE_SIZE}
        if field_selector:
            query["fieldSelector"] = field_selector
        if label_selector:
            query["labelSelector"] = label_selector
        items: list[Obj] = []
        while True:
            page = self._get(path, query, f"{plural}.{api_version}")
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    def _get(self, path: str, query: dict[str, str | int | bool], what: str) -> Obj:
        try:
            return self.client.get(path, query)
        except rest.ApiError as exc:
            raise ClusterError(_refusal(self.client.server, what, exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(
                f"cannot reach the API server at {self.client.server}: {_reason(exc)}"
            ) from exc


def connect(kubeconfig: str | None = None, context: str | None = None) -> Cluster:
    cfg = load_config(kubeconfig, context)
    try:
        return Cluster(rest.Client(cfg, pool_size=2, user_agent="exalbctl"))
    except (ssl.SSLError, OSError) as exc:
        raise ClusterError(f"cannot load the TLS material of the kubeconfig: {exc}") from exc


def _refusal(server: str, what: str, exc: rest.ApiError) -> str:
    if exc.status == 404:
        return f"{server} does not serve {what} (is its CRD installed?)"
    if exc.status in (401, 403):
        return f"{server} refused to list {what}: {exc}"
    return f"listing {what} on {server} failed: {exc}"


def _reason(exc: BaseException) -> str:
    """The innermost cause: 'Connection refused' rather than urllib3's retry wrapper."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return _reason(reason)
    return str(exc)
