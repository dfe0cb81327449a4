"""exalbctl against the real apiserver: the allocator's fixtures, an admin kubeconfig, the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exalbctl.main import run
from testbed.controlplane import ControlPlane
from tests.integration.allocator.conftest import (  # the fixtures, shared
    cluster,
    crds,
    exalb_ns,
    start_allocator,
)

__all__ = ["cluster", "crds", "exalb_ns", "start_allocator"]

FIXTURES = Path(__file__).parent / "fixtures"
UNIT_FIXTURES = Path(__file__).parents[2] / "unit" / "exalbctl" / "fixtures"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass(frozen=True)
class Ctl:
    """exalbctl with the admin kubeconfig, in-process (fast) or as the installed console script."""

    kubeconfig: Path

    def __call__(self, *argv: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = run([*argv, "--kubeconfig", str(self.kubeconfig)], out, err)
        return Result(code, out.getvalue(), err.getvalue())

    def script(self, *argv: str) -> Result:
        exe = Path(sys.executable).parent / "exalbctl"
        p = subprocess.run(
            [str(exe), *argv, "--kubeconfig", str(self.kubeconfig)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Result(p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="session")
def ctl(control_plane: ControlPlane) -> Ctl:
    return Ctl(control_plane.admin_kubeconfig)
