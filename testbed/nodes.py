"""A test bed of real Kubernetes nodes: control plane, kubelets with containerd, an FRR router.

Each part runs in a network namespace of its own, joined to the router's by
a veth link; the host reaches only the apiserver, over one more link. Every
address comes from the benchmarking range 198.18.0.0/15 (<id> is the bed's):

| what                               | namespace         | address                        |
| ---------------------------------- | ----------------- | ------------------------------ |
| router end of link k               | exalb-<id>-router | 198.18.200.(4k+1)/30           |
| router's BGP address (every node)  | exalb-<id>-router | 198.18.255.1/32 on lo          |
| control plane, link k=0            | exalb-<id>-cp     | 198.18.200.2/30                |
| node i (1..14), link k=i           | exalb-<id>-node<i>| 198.18.200.(4i+2)/30 (its IP)  |
| client, link k=15                  | exalb-<id>-client | 198.18.200.62/30               |
| apiserver :6443 and etcd :2379     | exalb-<id>-cp     | 198.18.201.2/30                |
| host end of the apiserver link     | host              | 198.18.201.1/30                |
| pods of node i (bridge cni0)       | exalb-<id>-node<i>| 198.18.<i>.0/24, gateway .1    |
| Services (kubernetes.default .0.1) | -                 | 198.19.0.0/16                  |

The router (AS 64512) forwards between the links, holds static routes to
every node's pod range, and accepts BGP sessions on 198.18.255.1 (so one
BGPPeer serves every node) from any address of 198.18.200.0/24 with another
AS; zebra installs what bgpd learns into the router's kernel, one next hop
per announcing node (ECMP, hashed on ports for both families), so the client's requests to a
Service address really travel to the nodes. Every link, the router and the pods
are dual-stack: the IPv6 plan is in :mod:`testbed.dualstack`. Images come from
OCI archives imported into
each node's containerd; pods use ``imagePullPolicy: Never``.

``python -m testbed.nodes`` (``make nodes``) brings a bed up for a person and
tears it down on Ctrl-C; the tests use the same :func:`start_bed`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from . import dualstack, netns
from .binaries import ROOT, find
from .controlplane import ADMIN_TOKEN, ControlPlane
from .hostsysctl import HostSettings
from .node import Node
from .procs import wait_for
from .routers.frr_netns import FrrNamespace

BUILD = ROOT / ".build"
CHART = ROOT / "charts" / "exalb"
EXALB_IMAGE = BUILD / "exalb-image.oci.tar"
PAUSE_IMAGE = BUILD / "pause-image.oci.tar"
SERVICE_CIDR = "198.19.0.0/16"
PODS = "198.18.0.0/17"  # every node's pod range, 198.18.1.0/24 to 198.18.14.0/24
API_ADDRESS, HOST_ADDRESS = "198.18.201.2", "198.18.201.1"
ROUTER_ADDRESS = "198.18.255.1"
ROUTER_ASN = 64512
LINKS = "198.18.200.0/24"
MAX_NODES = 14
CLIENT_LINK = 15  # the last /30 of LINKS
BED_LOCK = Path("/tmp/exalb-realnode-bed.lock")
# What the running bed found on the host and where it works; gone after its teardown.
BED_RECORD = Path("/tmp/exalb-realnode-bed.json")
# What Bed.ns and Bed.host_link name: a bed's id is four hex digits.
BED_NAMESPACE = re.compile(r"exalb-[0-9a-f]{4}-[a-z0-9]+")
BED_HOST_LINK = re.compile(r"exalb[0-9a-f]{4}")


def router_end(k: int) -> str:
    return f"198.18.200.{4 * k + 1}"


def far_end(k: int) -> str:
    return f"198.18.200.{4 * k + 2}"


def client_address() -> str:
    """Where the client namespace's requests come from: a source outside the cluster."""
    return far_end(CLIENT_LINK)


def pod_cidr(i: int) -> str:
    return f"198.18.{i}.0/24"


def image_name(archive: Path) -> str:
    """The reference an OCI archive of tools/image names its image with."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise RuntimeError(f"{archive} has no index.json")
        index = json.load(member)
    return str(index["manifests"][0]["annotations"]["io.containerd.image.name"])


def ready_nodes(core: client.CoreV1Api) -> set[str]:
    """Names of the nodes whose Ready condition is True."""
    return {
        str(n.metadata.name)
        for n in core.list_node().items
        if n.metadata
        and n.status
        and any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    }


def require_images(archives: Sequence[Path]) -> None:
    missing = [str(a) for a in archives if not a.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} missing; build with: make image")


@dataclass
class Bed:
    """Everything one bed started, in the order :meth:`stop` undoes it."""

    workdir: Path
    node_count: int = 2
    images: Sequence[Path] = (EXALB_IMAGE,)
    bed_id: str = field(default_factory=lambda: secrets.token_hex(2))
    namespaces: list[str] = field(default_factory=list)
    host_link: str = ""
    nodes: list[Node] = field(default_factory=list)
    control_plane: ControlPlane | None = None
    router: FrrNamespace | None = None
    settings: HostSettings | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def ns(self, part: str) -> str:
        return f"exalb-{self.bed_id}-{part}"

    @property
    def kubeconfig(self) -> Path:
        assert self.control_plane is not None
        return self.control_plane.admin_kubeconfig

    @property
    def node_kubeconfig(self) -> Path:
        """What kubelets and kube-proxies use (written once the apiserver's port is known)."""
        return self.workdir / "node.kubeconfig"

    # --- bring-up --------------------------------------------------------
    def start(self) -> None:
        if not 1 <= self.node_count <= MAX_NODES:
            raise ValueError(f"node_count must be 1..{MAX_NODES}, not {self.node_count}")
        require_images([PAUSE_IMAGE, *self.images])
        self.settings = HostSettings()
        _write_record({"workdir": str(self.workdir), **self.settings.to_json()})
        self._phase("network", self._network)
        self._phase("network (IPv6)", self._network_v6)
        self._phase("router", self._router)
        self.control_plane = ControlPlane(
            self.workdir / "control-plane",
            netns=self.ns("cp"),
            address=API_ADDRESS,
            service_cidr=f"{SERVICE_CIDR},{dualstack.SERVICE_CIDR_V6}",
            service_account_admission=True,
            controllers="*",
            scheduler=True,
        )
        # Independent until the kubelets start: containerd and the image imports
        # run while the control plane comes up.
        with ThreadPoolExecutor(1) as pool:
            runtimes = pool.submit(self._phase, "runtimes and images", self._runtimes)
            self._phase("control plane", self.control_plane.start)
            runtimes.result()
        self.control_plane.write_kubeconfig(self.node_kubeconfig, ADMIN_TOKEN)
        for node in self.nodes:
            node.start_kubelet()
            node.start_proxy(f"{PODS},{dualstack.PODS_V6}")
        self._phase("nodes ready", self._wait_ready)

    def _phase(self, name: str, step: Callable[[], None]) -> None:
        t0 = time.monotonic()
        step()
        self.timings[name] = time.monotonic() - t0

    def _network(self) -> None:
        router = self.ns("router")
        for part in ["router", "cp", *(f"node{i}" for i in range(1, self.node_count + 1))]:
            netns.add(self.ns(part))
            self.namespaces.append(self.ns(part))
        netns.ip("-n", router, "addr", "add", f"{ROUTER_ADDRESS}/32", "dev", "lo")
        netns.sysctl(router, "net.ipv4.ip_forward", "1")
        netns.sysctl(router, "net.ipv6.conf.all.forwarding", "1")
        netns.sysctl(router, "net.ipv4.fib_multipath_hash_policy", "1")
        # IPv6's default (0) hashes addresses and the flow label, which a client's TCP stack
        # changes on a retransmission timeout: the connection would move to another node.
        netns.sysctl(router, "net.ipv6.fib_multipath_hash_policy", "1")
        for k, part in enumerate(["cp", *(f"node{i}" for i in range(1, self.node_count + 1))]):
            netns.link(
                (router, f"to-{part}", f"{router_end(k)}/30"),
                (self.ns(part), "eth0", f"{far_end(k)}/30"),
            )
            netns.route(self.ns(part), "default", "via", router_end(k))
            if k:
                netns.sysctl(self.ns(part), "net.ipv4.ip_forward", "1")
                netns.route(router, pod_cidr(k), "via", far_end(k))
        self.host_link = f"exalb{self.bed_id}"
        netns.link(
            (None, self.host_link, f"{HOST_ADDRESS}/30"),
            (self.ns("cp"), "host", f"{API_ADDRESS}/30"),
        )
        netns.route(router, f"{API_ADDRESS}/32", "via", far_end(0))
        self._client_network()

    def _client_network(self) -> None:
        """The client namespace: Service addresses only through the router, as from outside."""
        client_ns = self.ns("client")
        netns.add(client_ns)
        self.namespaces.append(client_ns)
        netns.link(
            (self.ns("router"), "to-client", f"{router_end(CLIENT_LINK)}/30"),
            (client_ns, "eth0", f"{client_address()}/30"),
        )
        netns.route(client_ns, "default", "via", router_end(CLIENT_LINK))

    def _network_v6(self) -> None:
        router = self.ns("router")
        dualstack.add_router_address(router)
        for k, part in enumerate(["cp", *(f"node{i}" for i in range(1, self.node_count + 1))]):
            dualstack.add_link_addresses(router, f"to-{part}", self.ns(part), k)
            if k:
                dualstack.route_node_pods(router, self.ns(part), k)
        dualstack.add_link_addresses(router, "to-client", self.ns("client"), CLIENT_LINK)

    def _router(self) -> None:
        self.router = FrrNamespace(
            address=ROUTER_ADDRESS,
            port=179,
            asn=ROUTER_ASN,
            neighbors=[],
            workdir=self.workdir / "router",
            netns=self.ns("router"),
            listen_range=LINKS,
            listen_range_v6=dualstack.LINKS_V6,
        )
        self.router.start()

    def _runtimes(self) -> None:
        pause = image_name(PAUSE_IMAGE)
        for i in range(1, self.node_count + 1):
            self.nodes.append(
                Node(
                    name=f"node{i}",
                    netns=self.ns(f"node{i}"),
                    address=far_end(i),
                    pod_cidr=pod_cidr(i),
                    address_v6=dualstack.far_end_v6(i),
                    pod_cidr_v6=dualstack.pod_cidr_v6(i),
                    workdir=self.workdir / f"node{i}",
                    kubeconfig=self.node_kubeconfig,
                    sandbox_image=pause,
                )
            )

        def prepare(node: Node) -> None:
            node.start_runtime()
            for archive in (PAUSE_IMAGE, *self.images):
                node.import_image(archive)

        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(prepare, self.nodes))

    def _wait_ready(self) -> None:
        names = {n.name for n in self.nodes}
        with self.api_client() as api:
            core = client.CoreV1Api(api)

            def ready() -> bool:
                return names <= ready_nodes(core)

            wait_for("every node Ready", ready, timeout=120, interval=0.5, on_timeout=self.logs)

    # --- use -------------------------------------------------------------
    def api_client(self) -> client.ApiClient:
        assert self.control_plane is not None
        return self.control_plane.api_client()

    def env(self) -> dict[str, str]:
        """KUBECONFIG for kubectl and helm, and their directory first on PATH."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{Path(find('kubectl')).parent}:{os.environ.get('PATH', '')}",
        }

    def kubectl(self, *args: str, timeout: float = 120) -> str:
        return self._run(find("kubectl"), args, timeout)

    def helm(self, *args: str, timeout: float = 300) -> str:
        return self._run(find("helm"), args, timeout)

    def install_chart(
        self, release: str, namespace: str, values: Mapping[str, Any], chart: Path = CHART
    ) -> str:
        """``helm upgrade --install --wait`` with the bed's image, imported, never pulled."""
        repository, tag = image_name(EXALB_IMAGE).rsplit(":", 1)
        image = {"repository": repository, "tag": tag, "pullPolicy": "Never"}
        path = self.workdir / f"{release}-values.yaml"
        path.write_text(yaml.safe_dump({"image": image, **values}))
        try:
            return self.helm(
                "upgrade", "--install", release, str(chart), "--namespace", namespace,
                "--create-namespace", "-f", str(path), "--wait", "--timeout=180s",
            )  # fmt: skip
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self._pods_of(namespace)}") from None

    def _pods_of(self, namespace: str) -> str:
        """What a failed ``--wait`` waited for: the pods, their conditions and last logs."""
        parts = [self.kubectl("get", "pods", "-n", namespace, "-o", "wide")]
        for pod in self.kubectl("get", "pods", "-n", namespace, "-o", "name").split():
            parts.append(self.kubectl("describe", "-n", namespace, pod)[-3000:])
            try:
                logs = self.kubectl("logs", "-n", namespace, pod, "--all-containers", "--tail=30")
            except RuntimeError as exc:
                logs = str(exc)
            parts.append(f"--- {pod} logs ---\n{logs}")
        return "\n".join(parts)

    def _run(self, binary: str, args: Sequence[str], timeout: float) -> str:
        done = subprocess.run(
            [binary, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(binary).name} {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def logs(self) -> str:
        parts = [n.logs() for n in self.nodes]
        if self.control_plane:
            parts.append(self.control_plane.logs())
        if self.router:
            parts.append(self.router.log_tail())
        return "\n".join(parts)

    # --- faults ----------------------------------------------------------
    def cut_link(self, node: Node) -> None:
        """``node`` loses its one link to the router, as a node whose cable or NIC fails.

        Set down inside the node, as its NIC would go: the router's end loses its
        carrier (a veth's two ends share it) but keeps its addresses and routes.
        """
        netns.ip("-n", node.netns, "link", "set", "eth0", "down")

    def restore_link(self, node: Node) -> None:
        """Undo :meth:`cut_link`: the link up, with what the node's kernel dropped when it went
        down (its default routes and its IPv6 address)."""
        k = self.nodes.index(node) + 1
        netns.ip("-n", node.netns, "link", "set", "eth0", "up")
        netns.route(node.netns, "default", "via", router_end(k))
        dualstack.add_far_end(node.netns, k)

    # --- teardown --------------------------------------------------------
    def stop(self) -> None:
        """Undo everything, each step even when an earlier one failed."""
        steps: list[Callable[[], None]] = [node.stop for node in self.nodes]
        if self.control_plane:
            steps.append(self.control_plane.stop)
        if self.router:
            steps.append(self.router.stop)
        if self.host_link:  # before its namespace: that one's deletion is asynchronous
            steps.append(self._delete_host_link)
        steps += [partial(netns.delete, ns) for ns in reversed(self.namespaces)]
        if self.settings:
            steps.append(self._restore_settings)
        steps.append(lambda: shutil.rmtree(self.workdir, ignore_errors=True))
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:
                errors.append(repr(exc))
        if errors:
            raise RuntimeError("test bed teardown: " + "; ".join(errors))

    def _delete_host_link(self) -> None:
        if (Path("/sys/class/net") / self.host_link).exists():
            netns.ip("link", "delete", self.host_link)

    def _restore_settings(self) -> None:
        assert self.settings is not None
        restored = self.settings.restore()
        BED_RECORD.unlink(missing_ok=True)
        if restored:
            print(f"test bed: restored host settings kubelet changed: {', '.join(restored)}")


@contextmanager
def start_bed(node_count: int = 2, images: Sequence[Path] = (EXALB_IMAGE,)) -> Iterator[Bed]:
    """A running bed, torn down on exit whatever happened; logs printed when bring-up fails.

    Its addresses and namespace names are fixed, so two beds cannot coexist on
    one host: a second one waits here for the first to be torn down.
    """
    with _the_only_bed():
        yield from _run_bed(node_count, images)


@contextmanager
def _the_only_bed(timeout: float = 3600) -> Iterator[None]:
    with BED_LOCK.open("a") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    held = f"another test bed held {BED_LOCK} for {timeout:.0f}s"
                    raise TimeoutError(held) from None
                time.sleep(1)
        try:
            _clear_leftovers()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _clear_leftovers(
    namespaces: re.Pattern[str] = BED_NAMESPACE,
    links: re.Pattern[str] = BED_HOST_LINK,
    record: Path = BED_RECORD,
) -> None:
    """Remove the namespaces, processes and host link of a bed killed before its teardown,
    then put back the host settings it found and remove its work directory.

    Called with the lock held, so no live bed owns them. Kept, the dead bed's host
    link holds the same address and route as the next bed's, and that bed's API
    server is unreachable from the host (its etcd check is refused); its kubelets'
    kernel settings would be taken for the host's own by the next bed.
    """
    for link in netns.host_links(links):  # first: a namespace's deletion drops it asynchronously
        netns.ip("link", "delete", link)
        print(f"test bed: removed host link {link} a killed bed left")
    for name in netns.names(namespaces):
        killed = netns.kill_all(name)
        netns.delete(name)
        print(f"test bed: removed namespace {name} a killed bed left ({killed} processes)")
    if record.exists():
        found = json.loads(record.read_text())
        restored = HostSettings.from_json(found).restore()
        workdir = Path(found["workdir"])
        if workdir.name.startswith("exalb-bed-"):  # never anything else, whatever the file says
            shutil.rmtree(workdir, ignore_errors=True)
        record.unlink()
        put_back = ", ".join(restored) or "nothing had changed"
        print(f"test bed: removed a killed bed's {workdir}; host settings: {put_back}")


def _write_record(record: dict[str, Any], path: Path = BED_RECORD) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    partial.replace(path)  # never half a record


def _run_bed(node_count: int, images: Sequence[Path]) -> Iterator[Bed]:
    workdir = Path(tempfile.mkdtemp(prefix="exalb-bed-"))
    workdir.chmod(0o755)  # FRR's daemons run as the frr user
    bed = Bed(workdir, node_count, images)
    try:
        try:
            bed.start()
        except BaseException:
            print(bed.logs())
            raise
        yield bed
    finally:
        bed.stop()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Bring up a test bed of real nodes until Ctrl-C.")
    p.add_argument("--nodes", type=int, default=2)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    t0 = time.monotonic()
    with start_bed(args.nodes) as bed:
        print(
            f"test bed up in {time.monotonic() - t0:.1f}s "
            + ", ".join(f"{k} {v:.1f}s" for k, v in bed.timings.items())
        )
        print(f"exalb image: {image_name(EXALB_IMAGE)} (pods need imagePullPolicy: Never)")
        print(f"router: vtysh --vty_socket {bed.workdir / 'router'} -c 'show bgp summary'")
        print(f"  nodes: {', '.join(f'{n.name} {n.address}' for n in bed.nodes)}")
        print(
            f"  BGP: the router is AS {ROUTER_ASN} at {ROUTER_ADDRESS} and "
            f"{dualstack.ROUTER_ADDRESS_V6}, for every node"
        )
        print(f"\n  export KUBECONFIG={bed.kubeconfig} PATH={Path(find('kubectl')).parent}:$PATH")
        print("  kubectl get nodes -o wide; helm install exalb charts/exalb ...\n")
        print("Ctrl-C tears it all down.")
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("tearing down")


if __name__ == "__main__":
    main()
