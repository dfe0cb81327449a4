"""Secrets never leave their Secret: an MD5 session at debug, then every output is searched.

The announcer and its ExaBGP run at ``debug``; the session is established with
the password, ExaBGP is killed and restarted, the peer is restarted by an edit,
and the Secret is finally deleted. Then the password is searched for, as plain
text, base64 and hex, in the announcer's log (ExaBGP's log is part of it), the
metrics page, every Event, every BGPSessionStatus, and every file under the
run directory. Only ExaBGP's config may hold it (it must: ExaBGP reads it there),
and only readable by its owner in a directory of its owner. The search is shown
to work by finding the password in the Secret itself and in that config.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import stat
from pathlib import Path

import pytest
from kubernetes import client

from announcer.core import decide
from testbed.lab import Lab
from testbed.routers import Neighbor
from testbed.routers.base import settle
from tests.conftest import RouterFactory

from .test_faults import _exabgp_of

pytestmark = pytest.mark.integration

IP = "198.51.100.60"
PREFIX = f"{IP}/32"
PASSWORD = "md5-Zq7-wrX!kp4"


def forms(password: str) -> dict[str, str]:
    raw = password.encode()
    return {
        "plain": password,
        "base64": base64.b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
    }


def found(text: str) -> list[str]:
    """The forms of the password that ``text`` contains."""
    return [name for name, form in forms(PASSWORD).items() if form in text]


def test_no_password_in_any_log_metric_event_status_or_readable_file(
    lab: Lab, router: RouterFactory, kube: client.ApiClient, tmp_path: Path
) -> None:
    lab.exabgp_log_level = "debug"
    run_dir = tmp_path / "run"
    r = router("gobgp", lab.router_ip, 64512, [Neighbor(lab.source(1), lab.asn, PASSWORD)])
    lab.add_secret("tor-md5", PASSWORD)
    lab.add_peer("tor", r, passwordSecret={"name": "tor-md5"})
    lab.add_node(
        1,
        extra_args=[
            "--log-level",
            "debug",
            "--status-interval",
            "0.5",
            "--run-dir",
            str(run_dir),
        ],
    )
    lab.set_endpoints("web", {1: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)  # the session runs with the password
    lab.wait_explained("web", {1: ""})

    os.kill(_exabgp_of(lab, 1), signal.SIGKILL)  # a restart: config written again
    r.wait_absent(PREFIX)
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=30)
    lab.patch_peer("tor", {"holdTime": "12s"})  # a peer restart
    r.wait_rib("restarted with the new hold time", lambda rib: PREFIX in rib, timeout=30)
    lab.core.delete_namespaced_secret(
        "tor-md5", lab.bgp_secrets_namespace
    )  # the peer becomes unusable
    r.wait_absent(PREFIX, timeout=30)
    # Only the announcer reads the Secret: explain takes the missing Secret from its report.
    explained = lab.wait_explained("web", {1: decide.NO_PEERS})
    assert "passwordSecret 'tor-md5' is missing" in explained["nodes"][0]["evidence"]
    settle(1)

    # The search can find it: in the Secret (as the API returns it) and in ExaBGP's config.
    lab.add_secret("probe", PASSWORD)
    probe = kube.sanitize_for_serialization(
        client.CoreV1Api(kube).read_namespaced_secret("probe", lab.bgp_secrets_namespace)
    )
    assert "base64" in found(json.dumps(probe))
    holding = []
    for path in sorted(run_dir.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            assert mode & 0o077 == 0 or path == run_dir, f"{path} is {oct(mode & 0o777)}"
        elif stat.S_ISREG(mode) and found(path.read_text(errors="replace")):
            holding.append(path.name)
            assert mode & 0o777 == 0o600, f"{path} holds the password, mode {oct(mode)}"
            assert path.parent.stat().st_mode & 0o777 == 0o700
    assert holding == ["exabgp.conf"]

    node = lab.node(1)
    assert node.proc is not None
    log = node.proc.log.read_text()
    assert '"level": "debug"' in log  # the announcer's log is at debug
    assert re.search(r"^python\s+3\.", log, re.M)  # and so is ExaBGP's (a debug-only line)
    assert found(log) == []
    assert found(lab.metrics(1)) == []
    assert found(json.dumps(explained)) == []
    events = client.CoreV1Api(kube).list_event_for_all_namespaces()
    assert found(json.dumps(kube.sanitize_for_serialization(events))) == []
    statuses = lab.custom.list_namespaced_custom_object(
        "exalb.io", "v1alpha1", lab.namespace, "bgpsessionstatuses"
    )
    assert statuses["items"], "no BGPSessionStatus was written"
    assert found(json.dumps(statuses)) == []
