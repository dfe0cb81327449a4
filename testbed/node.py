"""One real Kubernetes node: its own containerd (Debian's, with runc) and an upstream kubelet.

The node lives in a network namespace the bed created, and in a private mount
namespace held open by a ``sleep`` process: containerd, its shims, the
kubelet and ``ctr`` all enter both, so the volumes kubelet mounts are the ones
containerd sees, and every mount (overlay snapshots, pod network namespaces,
tmpfs volumes) disappears with that namespace at teardown. tmpfs over
/run/containerd, /run/netns, /var/lib/cni and /var/log keep the shims'
sockets, the pods' network namespaces, the CNI cache and kubelet's
/var/log/containers off the host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from .binaries import find
from .netns import enter
from .procs import Proc, wait_for

CNI_BIN = Path("/usr/lib/cni")
PRIVATE_TMPFS = ("/run/containerd", "/run/netns", "/var/lib/cni", "/var/log")


@dataclass
class Node:
    """A node named ``name`` at ``address`` in ``netns``, pods from ``pod_cidr``.

    With ``address_v6`` and ``pod_cidr_v6`` it is dual-stack: an InternalIP of each
    family, and pods with an address of each.
    """

    name: str
    netns: str
    address: str
    pod_cidr: str
    workdir: Path
    kubeconfig: Path
    sandbox_image: str
    address_v6: str | None = None
    pod_cidr_v6: str | None = None
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def addresses(self) -> list[str]:
        """The node's IPs, IPv4 first (kubelet's ``--node-ip``)."""
        return [self.address, *([self.address_v6] if self.address_v6 else [])]

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd.sock"

    # --- lifecycle -------------------------------------------------------
    def start_runtime(self) -> None:
        """Mount namespace, then containerd; ready for image imports."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._hold_mount_namespace()
        config = self._containerd_config()
        self.procs["containerd"] = self._spawn(
            "containerd", [find("containerd"), f"--config={config}"]
        )
        wait_for(
            f"{self.name} containerd",
            lambda: self.ctr("version") is not None,
            timeout=60,
            interval=0.2,
            on_timeout=self.procs["containerd"].tail,
        )

    def start_kubelet(self) -> None:
        config = self._kubelet_config()
        self.procs["kubelet"] = self._spawn(
            "kubelet",
            [
                find("kubelet"),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--root-dir={self.workdir / 'kubelet'}",
                f"--cert-dir={self.workdir / 'kubelet-pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={','.join(self.addresses)}",
                "--v=1",
            ],
        )

    def start_proxy(self, cluster_cidr: str) -> None:
        """kube-proxy in iptables mode: Service IPs (``kubernetes.default`` first) reach pods."""
        self.procs["kube-proxy"] = self._spawn(
            "kube-proxy",
            [
                find("kube-proxy"),
                f"--kubeconfig={self.kubeconfig}",
                f"--hostname-override={self.name}",
                f"--cluster-cidr={cluster_cidr}",
                "--proxy-mode=iptables",
                # conntrack limits are host-wide: leave them alone.
                "--conntrack-max-per-core=0",
                "--metrics-bind-address=127.0.0.1:10249",
                "--healthz-bind-address=127.0.0.1:10256",
                "--v=0",
            ],
        )

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", str(archive))

    def ctr(self, *args: str) -> str:
        done = subprocess.run(
            [*self._inside(), find("ctr"), f"--address={self.socket}", "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} on {self.name}: {done.stderr.strip()}")
        return done.stdout

    def kill_container(self, container_id: str) -> None:
        """SIGKILL a container's first process from outside it, as a crash would end it."""
        self.ctr("tasks", "kill", "--signal", "SIGKILL", container_id.removeprefix("containerd://"))

    def processes(self) -> set[int]:
        """Every process of this node: its mount namespace's and their descendants (the pods').

        A container has a mount namespace of its own, but its parent is a shim in the node's.
        """
        node_mounts = os.readlink(f"/proc/{self.procs['mounts'].pid}/ns/mnt")
        parents: dict[int, int] = {}
        mine: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                in_node = os.readlink(entry / "ns" / "mnt") == node_mounts
            except OSError:
                continue  # exited meanwhile
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
            if in_node:
                mine.add(int(entry.name))
        while True:
            children = {pid for pid, parent in parents.items() if parent in mine} - mine
            if not children:
                return mine
            mine |= children

    def freeze(self) -> None:
        """SIGSTOP every process of the node: a hung node whose kernel still forwards.

        Twice, for what a process forked between the listing and its stop.
        """
        for _ in range(2):
            self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """kubelet, then every task through containerd (runc removes its cgroups), then the rest."""
        if "mounts" in self.procs:
            self.thaw()  # a test that froze the node and failed before thawing it
        for name in ("kube-proxy", "kubelet"):
            proc = self.procs.pop(name, None)
            if proc:
                proc.stop()
        if "containerd" in self.procs:
            self._remove_tasks()
        containerd = self.procs.pop("containerd", None)
        if containerd:
            containerd.stop()
        self._kill_shims()
        holder = self.procs.pop("mounts", None)
        if holder:
            holder.stop()

    def logs(self) -> str:
        return "\n".join(
            f"--- tail of {self.name} {name} ({proc.log}) ---\n{proc.tail()}"
            for name, proc in self.procs.items()
            if name != "mounts"
        )

    # --- internals -------------------------------------------------------
    def _hold_mount_namespace(self) -> None:
        # The unpacked images too: a tmpfs is faster to fill and gone at once at teardown.
        tmpfs = [*PRIVATE_TMPFS, self.workdir / "containerd-root"]
        mounts = " && ".join(f"mkdir -p {d} && mount -t tmpfs tmpfs {d}" for d in tmpfs)
        self.procs["mounts"] = Proc(
            "mounts",
            [
                "unshare",
                "--mount",
                "--propagation=private",
                "--",
                *enter(self.netns),
                "sh",
                "-c",
                f"{mounts} && exec sleep infinity",
            ],
            self.workdir / "mounts.log",
        )
        wait_for(
            f"{self.name} mount namespace",
            self._mounts_ready,
            timeout=10,
            on_timeout=self.procs["mounts"].tail,
        )

    def _mounts_ready(self) -> bool:
        holder = self.procs["mounts"]
        if not holder.alive():
            raise RuntimeError(f"{self.name} mount namespace holder exited: {holder.tail()}")
        mountinfo = Path(f"/proc/{holder.pid}/mountinfo").read_text()
        return " /var/log " in mountinfo

    def _inside(self) -> list[str]:
        return ["nsenter", f"--target={self.procs['mounts'].pid}", "--mount", "--net", "--"]

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        return Proc(name, [*self._inside(), *argv], self.workdir / f"{name}.log")

    def _containerd_config(self) -> Path:
        cni = self.workdir / "cni"
        cni.mkdir(exist_ok=True)
        (cni / "10-bridge.conflist").write_text(json.dumps(self._cni_config(), indent=1))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        lines = [
            "version = 2",
            f'root = "{self.workdir / "containerd-root"}"',
            f'state = "{self.workdir / "containerd-state"}"',
            "disabled_plugins = ["
            + ", ".join(
                f'"io.containerd.snapshotter.v1.{s}"' for s in ("btrfs", "zfs", "devmapper", "aufs")
            )
            + "]",
            "[grpc]",
            f'  address = "{self.socket}"',
            "[metrics]",
            '  address = ""',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{self.workdir / "containerd-opt"}"',
            f"[{cri}]",
            f'  sandbox_image = "{self.sandbox_image}"',
            # Without CAP_SYS_RESOURCE runc cannot set the sandbox's -998 oom score.
            "  restrict_oom_score_adj = true",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            f"[{cri}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"[{cri}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{cri}.cni]",
            f'  bin_dir = "{CNI_BIN}"',
            f'  conf_dir = "{cni}"',
            "  max_conf_num = 1",
        ]
        path = self.workdir / "containerd.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _cni_config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": f"exalb-{self.name}",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": c}] for c in self._pod_cidrs()],
                        "routes": [{"dst": "0.0.0.0/0"}, *self._ipv6_default_route()],
                        "dataDir": str(self.workdir / "cni-ipam"),
                    },
                }
            ],
        }

    def _pod_cidrs(self) -> list[str]:
        return [self.pod_cidr, *([self.pod_cidr_v6] if self.pod_cidr_v6 else [])]

    def _ipv6_default_route(self) -> list[dict[str, str]]:
        return [{"dst": "::/0"}] if self.pod_cidr_v6 else []

    def _kubelet_config(self) -> Path:
        resolv = self.workdir / "resolv.conf"
        resolv.write_text("# the exalb test bed runs no DNS\n")
        endpoint = f"unix://{self.socket}"
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.address,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "containerRuntimeEndpoint": endpoint,
            "imageServiceEndpoint": endpoint,
            # A cgroup v1 VM with swap, and no systemd: what real-node.md found necessary.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "resolvConf": str(resolv),
            "podLogsDir": str(self.workdir / "pod-logs"),
            # The API only the bed's namespaces reach: kubectl logs/exec through the apiserver.
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "4s",
        }
        path = self.workdir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _remove_tasks(self) -> None:
        try:
            tasks = self.ctr("tasks", "ls", "-q").split()
            for task in tasks:
                self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", task)
            for task in tasks:
                wait_for(
                    f"{self.name} task {task} stopped",
                    partial(self._task_deleted, task),
                    timeout=10,
                    interval=0.1,
                )
        except (RuntimeError, TimeoutError) as exc:
            print(f"{self.name}: tasks not removed through containerd: {exc}")

    def _task_deleted(self, task: str) -> bool:
        try:
            self.ctr("tasks", "delete", task)
        except RuntimeError as exc:
            return "not found" in str(exc)
        return True

    def _kill_shims(self) -> None:
        """Shims outlive containerd by design; ours are the ones named with our socket."""
        needle = str(self.socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and needle in cmdline:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass
