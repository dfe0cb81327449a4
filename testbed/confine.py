"""Running a process the way the chart runs its containers, to prove what it needs by running it.

The chart's securityContext (charts/exalb/values.yaml) gives every container a fixed
non-root uid, no capabilities, no new privileges and a read-only root file system, with one
writable emptyDir for the announcer's run directory. :func:`command` wraps an argv so that
it runs exactly so on the host: in a private mount namespace where ``/`` is remounted
read-only and a fresh tmpfs is mounted on ``writable``, then ``setpriv`` drops to ``uid``
with an empty bounding set. Only the process's own mount namespace changes, and it ends
with the process.

One adaptation to the host, not to the process: the interpreter or this checkout may live
under a directory others cannot enter (pyenv under ``/root``, a clone in ``mktemp -d``),
which the image never does; inside the namespace that directory is replaced by one that
holds only their trees.
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
PROJECT = Path(__file__).resolve().parents[1]  # the code and its venv the process runs


def command(argv: Sequence[str], writable: Path, uid: int = UID) -> list[str]:
    """``argv`` as ``uid`` with no capability, read-only ``/`` and a tmpfs on ``writable``."""
    steps = [f'mount -t tmpfs -o size=64m,mode=0700,uid={uid},gid={uid} exalb-run "$0"']
    steps += _reveal()
    steps += ["mount -o remount,bind,ro /", 'exec "$@"']
    drop = [find("setpriv"), "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]
    drop += ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    unshare = [find("unshare"), "--mount", "--propagation", "private", "sh", "-ec"]
    return [*unshare, "\n".join(steps), str(writable), *drop, *argv]


def _reveal() -> list[str]:
    """Shell steps that make the interpreter and this project reachable where a parent of
    theirs is closed to others (pyenv under ``/root``, a checkout in a mode-700 temp dir)."""
    kept: dict[Path, list[Path]] = {}  # closed directory -> its children to keep
    for path in (Path(sys.base_prefix), PROJECT):
        closed = next((d for d in reversed(path.parents) if d != Path("/") and _closed(d)), None)
        if closed is not None:
            child = closed / path.relative_to(closed).parts[0]
            if child not in kept.setdefault(closed, []):
                kept[closed].append(child)
    steps = []
    for n, (closed, children) in enumerate(kept.items()):
        stages = [f'"$0/.stage{n}-{i}"' for i in range(len(children))]
        for stage, child in zip(stages, children, strict=True):
            steps += [f"mkdir {stage}", f"mount --bind {child} {stage}"]
        steps.append(f"mount -t tmpfs -o mode=0755 exalb-shadow {closed}")
        for stage, child in zip(stages, children, strict=True):
            steps += [f"mkdir {child}", f"mount --move {stage} {child}", f"rmdir {stage}"]
        steps.append(f"mount -o remount,ro {closed}")
    return steps


def _closed(directory: Path) -> bool:
    return not directory.stat().st_mode & stat.S_IXOTH


def private_dir(uid: int = UID) -> Path:
    """A directory only ``uid`` can enter, for files the confined process must read
    (pytest's own directories are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="exalb-confined-"))
    os.chown(path, uid, uid)
    return path
