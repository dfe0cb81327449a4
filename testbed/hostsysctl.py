"""The host-wide state a kubelet node changes, saved before a bed starts and put back after.

kubelet rewrites a few kernel settings that are not per network namespace
(real-node.md lists them) and creates /var/log/containers; containerd's CRI
plugin creates a ``k8s.io`` cgroup in every hierarchy and the CNI library
/var/lib/cni. A test bed must leave the machine as it found it, even when it is killed before its
teardown: the bed writes what it found to a file (:meth:`HostSettings.to_json`), and the
next bed puts that back before it looks at the host itself (``testbed.nodes``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

PROC_SYS = Path("/proc/sys")
KEYS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
CREATED = (Path("/var/log/containers"), Path("/var/lib/cni"))
CGROUPS = Path("/sys/fs/cgroup")


class HostSettings:
    """What :meth:`restore` puts back: the values and paths found when it was created."""

    def __init__(self) -> None:
        paths = [PROC_SYS / k for k in KEYS] + sorted((PROC_SYS / "kernel/keys").iterdir())
        self.values = {p: p.read_text() for p in paths if p.is_file()}
        self.existing = {p for p in [*CREATED, *_runtime_cgroups()] if p.exists()}

    def to_json(self) -> dict[str, Any]:
        return {
            "values": {str(p): v for p, v in self.values.items()},
            "existing": sorted(str(p) for p in self.existing),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> HostSettings:
        """What a bed found at its start, as :meth:`to_json` gave it."""
        settings = cls.__new__(cls)
        settings.values = {Path(p): str(v) for p, v in record["values"].items()}
        settings.existing = {Path(p) for p in record["existing"]}
        return settings

    def restore(self) -> list[str]:
        """Put every changed value back, remove what appeared; return what was done, for the log."""
        changed = []
        for path, value in self.values.items():
            now = path.read_text()
            if now != value:
                try:
                    path.write_text(value)
                except OSError:  # read-only keys (kernel/keys/persistent_keyring_expiry, ...)
                    continue
                changed.append(f"{path.relative_to(PROC_SYS)} {now.strip()} -> {value.strip()}")
        for path in CREATED:
            if path not in self.existing and path.exists():
                shutil.rmtree(path)
                changed.append(f"removed {path}")
        for cgroup in _runtime_cgroups():
            if cgroup not in self.existing:
                _remove_cgroup(cgroup)
                changed.append(f"removed {cgroup}")
        return changed


def _runtime_cgroups() -> list[Path]:
    return sorted(CGROUPS.glob("*/k8s.io"))


def _remove_cgroup(path: Path) -> None:
    """A cgroup directory goes with rmdir only, children first (their files are not files)."""
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
        child.rmdir()
    path.rmdir()
