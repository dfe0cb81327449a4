"""A small simulated cluster for announcer tests: nodes, peers, assignments, endpoints.

Every node is a real ``exalb-announcer`` process with its own ``NODE_NAME``,
its own loopback source address (127.1.<lab>.<10+i>) and its own next hop
(TEST-NET-1 192.0.2.<10+i>, set as the Node's InternalIP). The announcers
authenticate as a ServiceAccount bound to the RBAC that docs/announcer.md
lists, so the tests also prove that RBAC is enough.
"""

from __future__ import annotations

import itertools
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

import exalb.assignments as contract
from exalb.assignments import Advertisement, Assignment
from testbed.binaries import ROOT
from testbed.controlplane import ControlPlane
from testbed.manifests import RBAC_DIR, apply, load
from testbed.procs import Proc, free_port
from testbed.routers import Neighbor, Router

GROUP, VERSION, PLURAL = "exalb.io", "v1alpha1", "bgppeers"
_LAB_IDS = itertools.count(20)


@dataclass
class SimNode:
    name: str
    index: int
    source: str  # loopback session source address
    next_hop: str  # the Node's InternalIP
    proc: Proc | None = None
    metrics_port: int = 0


@dataclass
class Lab:
    cp: ControlPlane
    api: client.ApiClient
    namespace: str
    workdir: Path
    lab_id: int = field(default_factory=lambda: next(_LAB_IDS))
    nodes: dict[str, SimNode] = field(default_factory=dict)
    asn: int = 64513
    exabgp_log_level: str = "info"  # tests read ExaBGP's log on failure; the bench uses warning
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:5])

    @property
    def rbac_suffix(self) -> str:
        """Cluster-scoped RBAC names are per lab, so labs (and tests) never share them."""
        return f"-{self.namespace}"

    def __post_init__(self) -> None:
        # Any: dict bodies are fine for the API, the generated stubs want model objects
        self.core: Any = client.CoreV1Api(self.api)
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.discovery: Any = client.DiscoveryV1Api(self.api)
        self.rbac: Any = client.RbacAuthorizationV1Api(self.api)
        self._kubeconfig: Path | None = None

    # --- addresses -------------------------------------------------------
    @property
    def router_ip(self) -> str:
        return f"127.1.{self.lab_id}.1"

    def source(self, i: int) -> str:
        return f"127.1.{self.lab_id}.{10 + i}"

    @staticmethod
    def hop(i: int) -> str:
        return f"192.0.2.{10 + i}"

    def neighbors(self, count: int, password: str | None = None) -> list[Neighbor]:
        return [Neighbor(self.source(i), self.asn, password) for i in range(1, count + 1)]

    # --- RBAC ------------------------------------------------------------
    def kubeconfig(self) -> Path:
        """Credentials of the ``exalb-announcer`` ServiceAccount bound by the chart's RBAC file."""
        if self._kubeconfig is not None:
            return self._kubeconfig
        apply(self.api, load(RBAC_DIR / "announcer.yaml", self.namespace, self.rbac_suffix))
        token = self.cp.service_account_token(self.namespace, "exalb-announcer")
        self._kubeconfig = self.cp.write_kubeconfig(self.workdir / "announcer.kubeconfig", token)
        return self._kubeconfig

    # --- nodes -----------------------------------------------------------
    def add_node(
        self,
        i: int,
        labels: Mapping[str, str] | None = None,
        ready: bool = True,
        network_unavailable: bool = False,
        start: bool = True,
        extra_args: Sequence[str] = (),
    ) -> SimNode:
        name = f"node-{i}-{self.suffix}"
        node = SimNode(name, i, self.source(i), self.hop(i))
        self.nodes[name] = node
        self.core.create_node({"metadata": {"name": name, "labels": dict(labels or {})}})
        self.set_node_status(i, ready=ready, network_unavailable=network_unavailable)
        if start:
            self.start_announcer(i, extra_args)
        return node

    def node(self, i: int) -> SimNode:
        return self.nodes[f"node-{i}-{self.suffix}"]

    def set_node_status(
        self,
        i: int,
        ready: bool = True,
        network_unavailable: bool = False,
        since: float | None = None,
    ) -> None:
        """Conditions as the kubelet reports them; ``since`` (epoch) is their transition time."""
        node = self.node(i)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since or 1767225600))
        conditions = [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "Test",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            },
            {
                "type": "NetworkUnavailable",
                "status": "True" if network_unavailable else "False",
                "reason": "Test",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            },
        ]
        self.core.patch_node_status(
            node.name,
            {
                "status": {
                    "conditions": conditions,
                    "addresses": [
                        {"type": "InternalIP", "address": node.next_hop},
                        {"type": "Hostname", "address": node.name},
                    ],
                }
            },
        )

    def label_node(self, i: int, labels: Mapping[str, str | None]) -> None:
        self.core.patch_node(self.node(i).name, {"metadata": {"labels": dict(labels)}})

    def start_announcer(self, i: int, extra_args: Sequence[str] = ()) -> Proc:
        node = self.node(i)
        if node.proc is not None and node.proc.alive():
            # A second one would orphan the first (and its ExaBGP) past the test's end.
            raise RuntimeError(f"the announcer of node {i} is running; stop it first")
        node.metrics_port = free_port("127.0.0.1")
        node.proc = Proc(
            f"announcer-{i}",
            [
                sys.executable,
                "-m",
                "announcer.main",
                "--node-name",
                node.name,
                "--namespace",
                self.namespace,
                "--kubeconfig",
                str(self.kubeconfig()),
                "--source-address",
                node.source,
                "--metrics-host",
                "127.0.0.1",
                "--metrics-port",
                str(node.metrics_port),
                "--exabgp-log-level",
                self.exabgp_log_level,
                *extra_args,
            ],
            self.workdir / f"announcer-{i}.log",
            cwd=ROOT,
        )
        return node.proc

    def stop_announcer(self, i: int, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        proc = self.node(i).proc
        assert proc is not None
        proc.signal(sig)
        try:
            return proc.popen.wait(timeout)
        finally:
            proc.stop()

    def metrics(self, i: int) -> str:
        import urllib.request

        port = self.node(i).metrics_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def session_status(self, i: int) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "bgpsessionstatuses", self.node(i).name
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj.get("status") or {})

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.name} ---\n{n.proc.tail(60)}" for n in self.nodes.values() if n.proc
        )

    # --- peers -----------------------------------------------------------
    def add_peer(self, name: str, router: Router | None, **spec: Any) -> None:
        """A BGPPeer for ``router``; with None, ``spec`` names the peer (a bare TCP listener)."""
        target = (
            {}
            if router is None
            else {
                "peerASN": router.asn,
                "peerAddress": router.address,
                "peerPort": router.port,
            }
        )
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BGPPeer",
            "metadata": {"name": name},
            "spec": {"myASN": self.asn, **target, "holdTime": "9s", **spec},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def patch_peer(self, name: str, spec: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": dict(spec)}
        )

    def delete_peer(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def add_secret(self, name: str, password: str) -> None:
        self.core.create_namespaced_secret(
            self.namespace,
            {
                "metadata": {"name": name},
                "type": "kubernetes.io/basic-auth",
                "stringData": {"password": password},
            },
        )

    # --- services --------------------------------------------------------
    def set_assignments(self, entries: Iterable[Assignment]) -> None:
        data = contract.layout({a.key: contract.encode(a) for a in entries}, 1)[0]
        self.set_assignment_data(data)

    def set_assignment_data(self, data: Mapping[str, str]) -> None:
        body = {
            "metadata": {
                "name": "exalb-assignments-0",
                "labels": {contract.LABEL: "true"},
            },
            "data": dict(data),
        }
        try:
            self.core.replace_namespaced_config_map("exalb-assignments-0", self.namespace, body)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_config_map(self.namespace, body)

    def assignment(
        self,
        name: str,
        ip: str,
        policy: str = "Cluster",
        advertisements: Sequence[Advertisement] = (Advertisement(),),
    ) -> Assignment:
        return Assignment(
            namespace=self.namespace,
            name=name,
            uid=f"uid-{name}",
            ips=(ip,),
            pool="pool",
            traffic_policy=policy,
            advertisements=tuple(advertisements),
        )

    def set_endpoints(self, service: str, endpoints: Mapping[int, bool | str]) -> None:
        """node index -> True (ready), False (not ready) or "terminating" (serving, terminating)."""
        eps = []
        for j, (i, state) in enumerate(sorted(endpoints.items())):
            if state == "terminating":
                cond = {"ready": False, "serving": True, "terminating": True}
            else:
                cond = {"ready": bool(state), "serving": bool(state), "terminating": False}
            eps.append(
                {
                    "addresses": [f"10.9.{i}.{j + 1}"],
                    "conditions": cond,
                    "nodeName": self.node(i).name,
                }
            )
        name = f"{service}-slice"
        body = {
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": eps,
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        }
        try:
            self.discovery.replace_namespaced_endpoint_slice(name, self.namespace, body)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            self.discovery.create_namespaced_endpoint_slice(self.namespace, body)

    # --- teardown --------------------------------------------------------
    def close(self) -> None:
        running = [n.proc for n in self.nodes.values() if n.proc is not None and n.proc.alive()]
        for proc in running:  # all at once: each takes about a second to shut down cleanly
            proc.signal(signal.SIGTERM)
        for n in self.nodes.values():
            if n.proc is not None:
                n.proc.stop(timeout=15)
        for n in self.nodes.values():
            try:
                self.core.delete_node(n.name)
            except client.ApiException:
                pass
        name = f"exalb-announcer{self.rbac_suffix}"
        for fn in (self.rbac.delete_cluster_role_binding, self.rbac.delete_cluster_role):
            try:
                fn(name)
            except client.ApiException:
                pass


def children(pid: int) -> list[int]:
    """Direct child pids of ``pid`` (the announcer's ExaBGP processes)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def same_session(before: float | None, after: float | None, started: float) -> bool:
    """Whether two "up since" readings are one session that was up before ``started``.

    Routers report "up since" to the second (FRR derives it from an uptime, so it
    jitters by one); a reset after ``started`` would move it past ``started``.
    """
    return (
        before is not None and after is not None and abs(after - before) <= 1.5 and after <= started
    )
