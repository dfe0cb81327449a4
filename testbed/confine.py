"""Running a process the way the chart runs its containers, to prove what it needs by running it.

The chart's securityContext (charts/exalb/values.yaml) gives every container a fixed
non-root uid, no capabilities, no new privileges and a read-only root file system, with one
writable emptyDir for the announcer's run directory. :func:`command` wraps an argv so that
it runs exactly so on the host: in a private mount namespace where ``/`` is remounted
read-only and a fresh tmpfs is mounted on ``writable``, then ``setpriv`` drops to ``uid``
with an empty bounding set. Only the process's own mount namespace changes, and it ends
with the process.

One adaptation to the host, not to the process: the interpreter may live under a
directory others cannot enter (pyenv under ``/root``), which the image never does; inside
the namespace that directory is replaced by one that holds only the interpreter's tree.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from testbed.binaries import find

UID = 65532  # the image's user (tools/image), and the chart's runAsUser


def command(argv: Sequence[str], writable: Path, uid: int = UID) -> list[str]:
    """``argv`` as ``uid`` with no capability, read-only ``/`` and a tmpfs on ``writable``."""
    steps = [f'mount -t tmpfs -o size=64m,mode=0700,uid={uid},gid={uid} exalb-run "$0"']
    steps += _reveal_interpreter()
    steps += ["mount -o remount,bind,ro /", 'exec "$@"']
    drop = [find("setpriv"), "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]
    drop += ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    unshare = [find("unshare"), "--mount", "--propagation", "private", "sh", "-ec"]
    return [*unshare, "\n".join(steps), str(writable), *drop, *argv]


def _reveal_interpreter() -> list[str]:
    """Shell steps that make sys.base_prefix reachable if a parent of it is closed to others."""
    prefix = Path(sys.base_prefix)
    for closed in reversed(prefix.parents):
        if closed != Path("/") and not closed.stat().st_mode & stat.S_IXOTH:
            keep = closed / prefix.relative_to(closed).parts[0]
            stage = '"$0/.stage"'
            return [
                f"mkdir {stage}",
                f"mount --bind {keep} {stage}",
                f"mount -t tmpfs -o mode=0755 exalb-shadow {closed}",
                f"mkdir {keep}",
                f"mount --move {stage} {keep}",
                f"rmdir {stage}",
                f"mount -o remount,ro {closed}",
            ]
    return []


def private_dir(uid: int = UID) -> Path:
    """A directory only ``uid`` can enter, for files the confined process must read
    (pytest's own directories are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="exalb-confined-"))
    os.chown(path, uid, uid)
    return path
