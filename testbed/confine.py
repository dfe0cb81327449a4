"""Running a process the way the chart runs its containers, to prove what it needs by running it.

The chart's securityContext (charts/exalb/values.yaml) gives every container a fixed
non-root uid, no capabilities, no new privileges and a read-only root file system, with one
writable emptyDir for the announcer's run directory. :func:`command` wraps an argv so that
it runs exactly so on the host: in a private mount namespace where ``/`` is remounted
read-only and a fresh tmpfs is mounted on ``writable``, then ``setpriv`` drops to ``uid``
with an empty bounding set. Only the process's own mount namespace changes, and it ends
with the process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from testbed.binaries import find

UID = 65532  # the image's user (tools/image), and the chart's runAsUser

_SCRIPT = (
    'mount -t tmpfs -o size=64m,mode=0700,uid={uid},gid={uid} exalb-run "$0"'
    " && mount -o remount,bind,ro /"
    ' && exec "$@"'
)


def command(argv: Sequence[str], writable: Path, uid: int = UID) -> list[str]:
    """``argv`` as ``uid`` with no capability, read-only ``/`` and a tmpfs on ``writable``."""
    drop = [find("setpriv"), "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]
    drop += ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    script = _SCRIPT.format(uid=uid)
    unshare = [find("unshare"), "--mount", "--propagation", "private", "sh", "-c", script]
    return [*unshare, str(writable), *drop, *argv]


def private_dir(uid: int = UID) -> Path:
    """A directory only ``uid`` can enter, for files the confined process must read
    (pytest's own directories are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="exalb-confined-"))
    os.chown(path, uid, uid)
    return path
