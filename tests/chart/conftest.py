"""Rendering the chart with the real helm binary (no cluster): fixtures and helpers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from testbed.binaries import find
from testbed.manifests import CHART, kube_version

NS = "lb-system"  # not the flags' default namespace, so a missed --namespace shows
Obj = dict[str, Any]


def helm(*args: str, values: dict[str, Any] | None = None, tmp: Path | None = None) -> str:
    """Run helm on the chart; raise with its stderr when it fails."""
    argv = [find("helm"), *args, "--kube-version", kube_version()]
    if values:
        assert tmp is not None, "values need a directory for their file"
        path = tmp / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        argv += ["-f", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise HelmFailed(done.stderr)
    return done.stdout


class HelmFailed(RuntimeError):
    """helm exited non-zero; the message is its stderr."""


def template(tmp: Path, values: dict[str, Any] | None = None, show_only: str = "") -> list[Obj]:
    """The chart's objects as ``helm install`` into NS would create them."""
    only = ["--show-only", show_only] if show_only else []
    out = helm("template", "exalb", str(CHART), "--namespace", NS, *only, values=values, tmp=tmp)
    return [d for d in yaml.safe_load_all(out) if d]


def only(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"want one {kind} {name or ''}, got {[o['kind'] for o in objs]}"
    return found[0]


def containers(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, container) for every container the chart runs."""
    for o in objs:
        if o["kind"] in ("DaemonSet", "Deployment"):
            for c in o["spec"]["template"]["spec"]["containers"]:
                yield o, c


def flag(container: Obj, name: str) -> str | None:
    """The value of ``--name=value`` in a container's args."""
    for a in container.get("args", []):
        if a.startswith(f"--{name}="):
            return str(a.split("=", 1)[1])
    return None
