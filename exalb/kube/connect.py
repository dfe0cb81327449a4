"""Building an API client: an explicit kubeconfig, $KUBECONFIG, or the in-cluster ServiceAccount."""

from __future__ import annotations

import os

from kubernetes import client, config


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    path = kubeconfig or os.environ.get("KUBECONFIG")
    cfg = client.Configuration()
    if path:
        config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    # Threads share one pool; size it for informers + writers + events.
    cfg.connection_pool_maxsize = 32
    return client.ApiClient(cfg)
