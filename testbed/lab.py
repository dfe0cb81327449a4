"""A small simulated cluster for announcer tests: nodes, peers, assignments, endpoints.

Every node is a real ``exalb-announcer`` process with its own ``NODE_NAME``,
its own loopback source address (127.1.<lab>.<10+i>) and its own next hop
(TEST-NET-1 192.0.2.<10+i>, set as the Node's InternalIP). Each announcer
authenticates as the ``exalb-announcer`` ServiceAccount with a token bound to a
Pod object on its node, as a DaemonSet pod's would be, under the chart's RBAC and
admission policy: so the tests also prove that what docs/announcer.md lists is enough.
Hand-written assignments name the VIPPool ``pool`` (:data:`POOL_ADDRESSES`), created
with the first of them: announcers announce nothing a pool does not justify.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
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
from announcer.core.model import default_bgp_secrets_namespace
from exalb.assignments import Advertisement, Assignment
from exalb.assignments.slicescope import SERVICE_LABEL
from exalbctl.main import run as exalbctl
from testbed import confine
from testbed.binaries import ROOT
from testbed.controlplane import ControlPlane
from testbed.manifests import CLUSTER_SCOPED, apply, delete, rbac
from testbed.procs import Proc, free_port, wait_for
from testbed.routers import Neighbor, Router

GROUP, VERSION, PLURAL = "exalb.io", "v1alpha1", "bgppeers"
ANNOUNCER_SA = "exalb-announcer"
POOL = "pool"
POOL_ADDRESSES = ("198.51.100.0/24", "2001:db8:5::/64")
_LAB_IDS = itertools.count(20)


@dataclass
class SimNode:
    name: str
    index: int
    source: str  # loopback session source address
    next_hop: str  # the Node's InternalIP
    next_hop_v6: str  # its IPv6 InternalIP: every simulated node is dual-stack
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
    # Run announcers as the chart's containers run: uid 65532, no capabilities, read-only
    # root file system, a tmpfs run directory (testbed.confine).
    confined: bool = False
    # CPU niceness of each announcer and everything it starts (ExaBGP, its bridge): a bench
    # that runs many nodes beside one control plane keeps the API server's share of the CPU
    # as its own machine would (bench/SCALE.md).
    nice: int = 0

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
        self._rbac_installed = False
        self._pools: set[str] = set()
        self._confined_home: Path | None = None

    # --- addresses -------------------------------------------------------
    @property
    def router_ip(self) -> str:
        return f"127.1.{self.lab_id}.1"

    def source(self, i: int) -> str:
        return f"127.1.{self.lab_id}.{10 + i}"

    @staticmethod
    def hop(i: int) -> str:
        return f"192.0.2.{10 + i}"

    @staticmethod
    def hop_v6(i: int) -> str:
        return f"2001:db8:2::{10 + i}"

    def neighbors(self, count: int, password: str | None = None) -> list[Neighbor]:
        return [Neighbor(self.source(i), self.asn, password) for i in range(1, count + 1)]

    # --- RBAC ------------------------------------------------------------
    @property
    def bgp_secrets_namespace(self) -> str:
        """Where the BGPPeers' password Secrets live: the announcer's default for ours."""
        return default_bgp_secrets_namespace(self.namespace)

    def _rbac_docs(self) -> list[dict[str, Any]]:
        """The chart's announcer RBAC and admission policy, rendered for this lab."""
        return rbac("announcer", self.namespace, self.rbac_suffix, self.bgp_secrets_namespace)

    def install_rbac(self) -> None:
        """Apply the announcer's RBAC and admission policy (once), with its secrets namespace."""
        if self._rbac_installed:
            return
        try:
            self.core.create_namespace({"metadata": {"name": self.bgp_secrets_namespace}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        apply(self.api, self._rbac_docs())
        self.cp.ensure_service_account(self.namespace, ANNOUNCER_SA)
        self._rbac_installed = True

    def announcer_pod(self, i: int) -> client.V1Pod:
        """The Pod object node ``i``'s announcer would run as, bound to its node.

        No kubelet runs it (it stays Pending); it exists so that the announcer's token can
        be bound to it and carry the node claim the admission policy checks.
        """
        self.install_rbac()
        node = self.node(i)
        name = f"{ANNOUNCER_SA}-{node.name}"
        try:
            existing: client.V1Pod = self.core.read_namespaced_pod(name, self.namespace)
            return existing
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        body = {
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": ANNOUNCER_SA}},
            "spec": {
                "nodeName": node.name,
                "serviceAccountName": ANNOUNCER_SA,
                "automountServiceAccountToken": False,
                "containers": [{"name": "announcer", "image": "exalb.invalid/announcer:lab"}],
            },
        }
        created: client.V1Pod = self.core.create_namespaced_pod(self.namespace, body)
        return created

    def announcer_token(self, i: int) -> str:
        """A token of ``exalb-announcer`` bound to node ``i``'s announcer Pod."""
        pod = self.announcer_pod(i)
        return self.cp.service_account_token(self.namespace, ANNOUNCER_SA, pod=pod)

    def kubeconfig(self, i: int) -> Path:
        """Node ``i``'s announcer credentials: its own token, bound to its Pod on its node."""
        home = self.confined_home() if self.confined else self.workdir
        path = home / f"announcer-{i}.kubeconfig"
        if not path.exists():
            self.cp.write_kubeconfig(path, self.announcer_token(i))
            if self.confined:  # its own copy of the CA: the control plane's is root's alone
                ca = home / "ca.crt"
                shutil.copyfile(self.cp.ca_file, ca)
                path.write_text(path.read_text().replace(str(self.cp.ca_file), str(ca)))
                for f in (ca, path):
                    os.chown(f, confine.UID, confine.UID)
        return path

    def confined_home(self) -> Path:
        """Where confined announcers find their credentials and run directories."""
        if self._confined_home is None:
            self._confined_home = confine.private_dir()
        return self._confined_home

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
        node = SimNode(name, i, self.source(i), self.hop(i), self.hop_v6(i))
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
                        {"type": "InternalIP", "address": node.next_hop_v6},
                        {"type": "Hostname", "address": node.name},
                    ],
                }
            },
            # A merge patch replaces the lists: a strategic one merges addresses by type,
            # which two InternalIPs (one per family) break.
            _content_type="application/merge-patch+json",
        )

    def label_node(self, i: int, labels: Mapping[str, str | None]) -> None:
        self.core.patch_node(self.node(i).name, {"metadata": {"labels": dict(labels)}})

    def start_announcer(self, i: int, extra_args: Sequence[str] = (), code: Path = ROOT) -> Proc:
        """``code``: the source tree to run (another version's, for upgrade tests)."""
        node = self.node(i)
        if node.proc is not None and node.proc.alive():
            # A second one would orphan the first (and its ExaBGP) past the test's end.
            raise RuntimeError(f"the announcer of node {i} is running; stop it first")
        # On the node's own address: outgoing connections to the API server take ports on
        # 127.0.0.1, and one took a port picked there before its announcer bound it.
        node.metrics_port = free_port(node.source)
        argv = [
            sys.executable,
            "-m",
            "announcer.main",
            "--node-name",
            node.name,
            "--namespace",
            self.namespace,
            "--kubeconfig",
            str(self.kubeconfig(i)),
            "--source-address",
            node.source,
            "--metrics-host",
            node.source,
            "--metrics-port",
            str(node.metrics_port),
            "--exabgp-log-level",
            self.exabgp_log_level,
            # Prompt reports, so exalbctl explain sees the announcers' word within a second.
            "--status-interval",
            "0.5",
            "--service-event-interval",
            "1",
            # In the lab's own directory: a SIGKILLed announcer cannot remove a temp dir.
            *("--run-dir", str(self.workdir / f"run-{i}")),
            *extra_args,
        ]
        if self.confined:
            run_dir = self.confined_home() / f"run-{i}"
            run_dir.mkdir(exist_ok=True)
            argv = [*confine.command(argv, run_dir), "--run-dir", str(run_dir)]
        log = self.workdir / f"announcer-{i}.log"
        node.proc = Proc(f"announcer-{i}", argv, log, cwd=code, nice=self.nice)
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

        node = self.node(i)
        url = f"http://{node.source}:{node.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
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

    def exalbctl(self, *argv: str) -> tuple[int, dict[str, Any]]:
        """An ``exalbctl`` command on the lab's namespace, as an admin: exit code and JSON."""
        out, err = io.StringIO(), io.StringIO()
        admin = ["-n", self.namespace, "-o", "json", "--kubeconfig", str(self.cp.admin_kubeconfig)]
        code = exalbctl([*argv, *admin], out, err)
        if code not in (0, 1):
            raise RuntimeError(f"exalbctl {argv[0]} exited {code}: {err.getvalue()}")
        return code, json.loads(out.getvalue())

    def explain(self, service: str) -> tuple[int, dict[str, Any]]:
        """``exalbctl explain`` of one of the lab's Services."""
        return self.exalbctl("explain", f"{self.namespace}/{service}")

    def explained_node(self, data: Mapping[str, Any], i: int) -> dict[str, Any]:
        """Node ``i``'s row of an ``exalbctl explain -o json``."""
        return dict(next(n for n in data["nodes"] if n["node"] == self.node(i).name))

    def wait_explained(
        self, service: str, checks: Mapping[int, str], timeout: float = 15
    ) -> dict[str, Any]:
        """Wait until ``exalbctl explain`` gives node ``i`` the first failing check
        ``checks[i]`` ("" for announced) and every announcer agrees; returns its JSON.

        The exit code must say the same: 0 when some node announces, else 1.
        """
        seen: list[Any] = []

        def explained() -> bool:
            code, data = self.explain(service)
            seen[:] = [code, data]
            rows = {n["node"]: n for n in data["nodes"]}
            want = {self.node(i).name: check for i, check in checks.items()}
            announced = any(n["announces"] for n in data["nodes"])
            return (
                all(rows[name]["check"] == check for name, check in want.items())
                and all(rows[name]["announces"] == (check == "") for name, check in want.items())
                and all(n["announcer"] == "agrees" for n in rows.values() if n["node"] in want)
                and code == (0 if announced else 1)
            )

        wait_for(
            f"exalbctl explain {service}: {dict(checks)}",
            explained,
            timeout,
            interval=0.2,
            on_timeout=lambda: json.dumps(seen, indent=1),
        )
        return dict(seen[1])

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

    def add_secret(self, name: str, password: str, namespace: str | None = None) -> None:
        """A BGP password Secret, in the BGP secrets namespace unless ``namespace`` says."""
        self.install_rbac()  # creates that namespace
        self.core.create_namespaced_secret(
            namespace or self.bgp_secrets_namespace,
            {
                "metadata": {"name": name},
                "type": "kubernetes.io/basic-auth",
                "stringData": {"password": password},
            },
        )

    # --- pools -----------------------------------------------------------
    def add_pool(self, name: str, addresses: Sequence[str]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "VIPPool",
            "metadata": {"name": name},
            "spec": {"addresses": list(addresses)},
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "vippools", body
        )
        self._pools.add(name)

    # --- services --------------------------------------------------------
    def set_assignments(self, entries: Iterable[Assignment]) -> None:
        data = contract.layout({a.key: contract.encode(a) for a in entries}, 1)[0]
        self.set_assignment_data(data)

    def set_assignment_data(self, data: Mapping[str, str]) -> None:
        if POOL not in self._pools:
            self.add_pool(POOL, POOL_ADDRESSES)
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
            pool=POOL,
            traffic_policy=policy,
            advertisements=tuple(advertisements),
        )

    def set_endpoints(
        self,
        service: str,
        endpoints: Mapping[int, bool | str],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """node index -> True (ready), False (not ready) or "terminating" (serving, terminating).

        ``labels``: the Service's, which the EndpointSlice controller would copy to it.
        By default the slice carries the label the allocator puts on every Service it
        assigns: every lab Service with endpoints is one exalb serves, and an allocator's
        shards tell the announcers to watch only slices so labelled.
        """
        self._write_slice(
            service,
            sorted(endpoints.items()),
            {SERVICE_LABEL: "true"} if labels is None else labels,
        )

    def set_endpoints_counts(self, service: str, counts: Mapping[int, int]) -> None:
        """node index -> how many ready endpoints the Service has on it."""
        self._write_slice(
            service,
            [(i, True) for i, n in sorted(counts.items()) for _ in range(n)],
            {SERVICE_LABEL: "true"},
        )

    def _write_slice(
        self,
        service: str,
        endpoints: Sequence[tuple[int, bool | str]],
        labels: Mapping[str, str] | None = None,
    ) -> None:
        eps = []
        for j, (i, state) in enumerate(endpoints):
            if state == "terminating":
                cond = {"ready": False, "serving": True, "terminating": True}
            else:
                cond = {"ready": bool(state), "serving": bool(state), "terminating": False}
            eps.append(
                {
                    "addresses": [f"198.18.{128 + i}.{j + 1}"],  # pods: 198.18.128.0/17
                    "conditions": cond,
                    "nodeName": self.node(i).name,
                }
            )
        name = f"{service}-slice"
        body = {
            "metadata": {
                "name": name,
                "labels": {**(labels or {}), "kubernetes.io/service-name": service},
            },
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
        if self._rbac_installed:
            self._remove_rbac()
        if self._confined_home is not None:
            shutil.rmtree(self._confined_home, ignore_errors=True)

    def _remove_rbac(self) -> None:
        """Delete what outlives the test's namespace: cluster-scoped objects, bound Pods.

        The Pods are deleted at once (grace 0): no kubelet will ever confirm their end.
        """
        self.core.delete_collection_namespaced_pod(
            self.namespace,
            label_selector=f"app.kubernetes.io/name={ANNOUNCER_SA}",
            grace_period_seconds=0,
        )
        try:
            self.core.delete_namespace(self.bgp_secrets_namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        delete(self.api, [d for d in self._rbac_docs() if d["kind"] in CLUSTER_SCOPED])


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
