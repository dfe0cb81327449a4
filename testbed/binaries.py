"""Where the harness finds its binaries, and how a missing one is reported.

A missing component never skips a test: it fails with the command that
installs it, because a skipped integration test is a test that silently
stopped proving anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".bin"
VENV_BIN = ROOT / ".venv" / "bin"

_HOW = {
    "kube-apiserver": "make kubebin   (builds tools/kubebin into .bin/)",
    "etcd": "make kubebin   (builds tools/kubebin into .bin/)",
    "kube-controller-manager": "make kubebin   (builds tools/kubebin into .bin/)",
    "kubectl": "make kubebin   (builds tools/kubebin into .bin/)",
    "helm": "make kubebin   (builds tools/kubebin into .bin/)",
    "kube-scheduler": "make kubebin   (builds tools/kubebin into .bin/)",
    "kubelet": "make kubebin   (builds tools/kubebin into .bin/)",
    "kube-proxy": "make kubebin   (builds tools/kubebin into .bin/)",
    "containerd": "make nodepkgs   (apt-get install -y containerd runc)",
    "ctr": "make nodepkgs   (apt-get install -y containerd)",
    "runc": "make nodepkgs   (apt-get install -y runc)",
    "zebra": "make routers   (apt-get install -y frr)",
    "gobgpd": "make routers   (apt-get install -y gobgpd)",
    "gobgp": "make routers   (apt-get install -y gobgpd)",
    "bird": "make routers   (apt-get install -y bird2)",
    "birdc": "make routers   (apt-get install -y bird2)",
    "bgpd": "make routers   (apt-get install -y frr)",
    "vtysh": "make routers   (apt-get install -y frr)",
    "bfdd": "make routers   (apt-get install -y frr)",
    "ip": "apt-get install -y iproute2",
    "exabgp": "make venv   (pip install -e '.[dev]' installs the pinned exabgp)",
    "promtool": "make promtool   (builds tools/promtool into .bin/)",
}


class MissingBinary(RuntimeError):
    """A component the tests need is not installed."""


def find(name: str) -> str:
    """Absolute path of ``name``, or raise :class:`MissingBinary` naming the install command."""
    candidates = [BIN / name, VENV_BIN / name]
    if name in ("bgpd", "zebra", "bfdd"):
        candidates.append(Path("/usr/lib/frr") / name)
    for c in candidates:
        if c.is_file():
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise MissingBinary(f"{name} is not installed; install it with: {_HOW.get(name, '?')}")
