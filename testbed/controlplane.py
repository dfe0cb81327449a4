"""A real Kubernetes control plane for tests: etcd + kube-apiserver (+ controller-manager).

By default everything listens on 127.0.0.1 on free ports, authorization is
RBAC, and authentication is a static admin token plus real ServiceAccount
tokens signed with keys generated here, so a test can prove exactly what a
ServiceAccount bound by the chart's RBAC may and may not do.

The real-node test bed (testbed.nodes) runs the same control plane in a
network namespace of its own, on a routable address that kubelets reach, with
what real pods need on top: the ServiceAccount admission plugin, every
controller, a kube-scheduler, and the ``kubernetes`` Service's endpoints.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client

from .binaries import find
from .netns import enter
from .procs import Proc, free_port, wait_for

ADMIN_TOKEN = "exalb-test-admin-token"
TEST_CONTROLLERS = "namespace-controller,garbage-collector-controller"


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver pair and the credentials to use it."""

    workdir: Path
    etcd_port: int = 0
    api_port: int = 0
    procs: dict[str, Proc] = field(default_factory=dict)
    # etcd's data, in RAM (/dev/shm): removed on stop, or every run would keep its copy.
    etcd_data: list[Path] = field(default_factory=list)
    # Where it runs: the host's loopback, or a namespace and an address routed to it.
    netns: str | None = None
    address: str = "127.0.0.1"
    service_cidr: str = "198.19.0.0/16"
    # Real pods need these; the host-process tests run without them.
    service_account_admission: bool = False
    controllers: str = TEST_CONTROLLERS
    scheduler: bool = False

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    # --- lifecycle -------------------------------------------------------
    def start(self, controller_manager: bool = True) -> None:
        self._keys()
        self.start_etcd()
        self.start_apiserver()
        self.write_kubeconfig(self.admin_kubeconfig, ADMIN_TOKEN)
        if controller_manager:
            self._start_controller_manager()
        if self.scheduler:
            self._start_scheduler()

    def _port(self, default: int) -> int:
        """A free port on the host's loopback; in a namespace of our own, the usual one."""
        return default if self.netns else free_port()

    def start_etcd(self) -> None:
        if not self.etcd_port:
            self.etcd_port = self._port(2379)
        peer = self._port(2380)
        etcd_url = f"http://{self.address}:{self.etcd_port}"
        data = Path(tempfile.mkdtemp(prefix="exalb-etcd-", dir=_tmpfs()))
        self.etcd_data.append(data)
        self.procs["etcd"] = Proc(
            "etcd",
            [
                *enter(self.netns),
                find("etcd"),
                "--name=exalb-test",
                f"--data-dir={data}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=exalb-test=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
            self.workdir / "etcd.log",
        )
        wait_for(
            "etcd /health",
            lambda: _http_ok(f"{etcd_url}/health"),
            timeout=30,
            on_timeout=self.logs,
        )

    def start_apiserver(self) -> None:
        """Start (or restart, on the same port) kube-apiserver and wait for /readyz."""
        if not self.api_port:
            self.api_port = self._port(6443)
        certs = self.workdir / "certs"
        certs.mkdir(exist_ok=True)
        admission = "enable" if self.service_account_admission else "disable"
        # The kubernetes Service needs endpoints only where pods reach it (a namespace).
        reconciler = "lease" if self.netns else "none"
        self.procs["kube-apiserver"] = Proc(
            "kube-apiserver",
            [
                *enter(self.netns),
                find("kube-apiserver"),
                f"--etcd-servers=http://{self.address}:{self.etcd_port}",
                f"--cert-dir={certs}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.api_port}",
                f"--service-cluster-ip-range={self.service_cidr}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                f"--{admission}-admission-plugins=ServiceAccount",
                f"--endpoint-reconciler-type={reconciler}",
                # Never a DNS lookup of a node name: nothing resolves them here.
                "--kubelet-preferred-address-types=InternalIP",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                f"--service-account-issuer=https://127.0.0.1:{self.api_port}/",
                f"--service-account-key-file={self.workdir / 'sa.pub'}",
                f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
                "--max-requests-inflight=2000",
                "--max-mutating-requests-inflight=1000",
                "--v=0",
            ],
            self.workdir / "kube-apiserver.log",
        )
        wait_for(
            "kube-apiserver /readyz",
            self._readyz,
            timeout=90,
            interval=0.2,
            on_timeout=self.logs,
        )

    def stop_apiserver(self) -> None:
        proc = self.procs.pop("kube-apiserver", None)
        if proc:
            proc.stop()

    def _start_controller_manager(self) -> None:
        kubeconfig = self.workdir / "kcm.kubeconfig"
        self.write_kubeconfig(kubeconfig, ADMIN_TOKEN)
        self.procs["kube-controller-manager"] = Proc(
            "kube-controller-manager",
            [
                *enter(self.netns),
                find("kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--controllers={self.controllers}",
                f"--root-ca-file={self.ca_file}",
                f"--service-account-private-key-file={self.workdir / 'sa.key'}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=0",
            ],
            self.workdir / "kube-controller-manager.log",
        )

    def _start_scheduler(self) -> None:
        kubeconfig = self.write_kubeconfig(self.workdir / "scheduler.kubeconfig", ADMIN_TOKEN)
        self.procs["kube-scheduler"] = Proc(
            "kube-scheduler",
            [
                *enter(self.netns),
                find("kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=0",
            ],
            self.workdir / "kube-scheduler.log",
        )

    def stop(self) -> None:
        for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self.procs.pop(name, None)
            if proc:
                proc.stop()
        while self.etcd_data:
            shutil.rmtree(self.etcd_data.pop(), ignore_errors=True)

    # --- credentials -----------------------------------------------------
    def _keys(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        key, pub = self.workdir / "sa.key", self.workdir / "sa.pub"
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("openssl is required: apt-get install -y openssl")
        subprocess.run(
            [openssl, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        subprocess.run(
            [openssl, "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
            check=True,
            capture_output=True,
        )
        (self.workdir / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')

    def configuration(self, token: str = ADMIN_TOKEN) -> client.Configuration:
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": f"Bearer {token}"}
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.verify_ssl = True
        return cfg

    def api_client(self, token: str = ADMIN_TOKEN) -> client.ApiClient:
        return client.ApiClient(self.configuration(token))

    def service_account_token(
        self, namespace: str, name: str, seconds: int = 3600, pod: client.V1Pod | None = None
    ) -> str:
        """A real token for ServiceAccount ``namespace/name`` (created if missing).

        With ``pod`` (which must run as that ServiceAccount), the token is bound to it, as
        the kubelet's projected tokens are: it dies with the Pod and carries the Pod's node
        as the ``authentication.kubernetes.io/node-name`` claim.
        """
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            self.ensure_service_account(namespace, name)
            bound = None
            if pod is not None:
                assert pod.metadata is not None
                bound = client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=pod.metadata.name, uid=pod.metadata.uid
                )
            req = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(
                    audiences=[], expiration_seconds=seconds, bound_object_ref=bound
                )
            )
            resp = core.create_namespaced_service_account_token(name, namespace, req)
            assert resp.status is not None, "TokenRequest returned no status"
            return str(resp.status.token)

    def ensure_service_account(self, namespace: str, name: str) -> None:
        """A read first: a create passes the quota admission, which times out (500) on a
        loaded API server, and most calls find the account there."""
        with self.api_client() as api:
            try:
                client.CoreV1Api(api).read_namespaced_service_account(name, namespace)
                return
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
            try:
                client.CoreV1Api(api).create_namespaced_service_account(
                    namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
                )
            except client.ApiException as exc:
                if exc.status != 409:
                    raise

    def write_kubeconfig(self, path: Path, token: str) -> Path:
        doc: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "exalb-test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "ctx", "context": {"cluster": "exalb-test", "user": "user"}}],
            "current-context": "ctx",
        }
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    # --- health ----------------------------------------------------------
    def _readyz(self) -> bool:
        proc = self.procs.get("kube-apiserver")
        if proc is not None and not proc.alive():
            raise RuntimeError("kube-apiserver exited:\n" + proc.tail())
        http = urllib3.PoolManager(cert_reqs="CERT_NONE")
        urllib3.disable_warnings()
        r = http.request(
            "GET",
            f"{self.url}/readyz",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=2.0,
            retries=False,
        )
        return r.status == 200

    def logs(self) -> str:
        parts = []
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            log = self.workdir / f"{name}.log"
            if log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                parts.append(f"--- tail of {name} log ({log}) ---\n{tail}")
        return "\n".join(parts)


def _http_ok(url: str) -> bool:
    r = urllib3.PoolManager().request("GET", url, timeout=1.0, retries=False)
    return r.status == 200


def _tmpfs() -> str:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else tempfile.gettempdir()


def start_control_plane(workdir: Path | None = None) -> ControlPlane:
    """Start a control plane in ``workdir`` (a fresh temp dir by default)."""
    cp = ControlPlane(workdir or Path(tempfile.mkdtemp(prefix="exalb-cp-")))
    t0 = time.monotonic()
    try:
        cp.start()
    except BaseException:
        print(cp.logs())
        cp.stop()
        raise
    cp.startup_seconds = time.monotonic() - t0  # type: ignore[attr-defined]
    return cp
