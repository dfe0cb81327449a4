"""A bed killed before its teardown leaves nothing the next bed trips over.

The next bed clears what a killed one left: its namespaces, the processes still
in them, its host link (whose address and route the next bed reuses), the host
settings its kubelets changed and its work directory. The clearing runs here under
patterns and a record file of its own, so a live bed is never touched.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import netns
from testbed.hostsysctl import PROC_SYS, HostSettings
from testbed.nodes import _clear_leftovers

pytestmark = pytest.mark.integration

NAMESPACES = re.compile(r"exalbt-[0-9a-f]{4}-[a-z0-9]+")
LINKS = re.compile(r"exalbt[0-9a-f]{4}")
HOST_END, FAR_END = "198.18.199.1/30", "198.18.199.2/30"


@pytest.fixture
def killed_bed() -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """A namespace with a process in it and a host link to it, as a SIGKILLed bed leaves them."""
    bed_id = secrets.token_hex(2)
    name, link = f"exalbt-{bed_id}-cp", f"exalbt{bed_id}"
    netns.add(name)
    netns.link((None, link, HOST_END), (name, "host", FAR_END))
    sleeper = subprocess.Popen([*netns.enter(name), "sleep", "120"])
    try:
        yield name, link, sleeper
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
        if (Path("/sys/class/net") / link).exists():
            netns.ip("link", "delete", link)
        netns.delete(name)


def test_the_next_bed_removes_a_killed_beds_namespaces_processes_and_host_link(
    killed_bed: tuple[str, str, subprocess.Popen[bytes]],
) -> None:
    name, link, sleeper = killed_bed
    assert netns.names(NAMESPACES) == [name]
    assert netns.host_links(LINKS) == [link]
    assert "198.18.199.0/30" in netns.ip("route", "show", "198.18.199.0/30")

    _clear_leftovers(NAMESPACES, LINKS, record=Path("/nonexistent/exalbt-bed.json"))

    assert sleeper.wait(timeout=10) == -9  # SIGKILL, not its own exit after 120 s
    assert netns.names(NAMESPACES) == []
    assert netns.host_links(LINKS) == []
    assert netns.ip("route", "show", "198.18.199.0/30").strip() == ""


def test_the_next_bed_puts_back_a_killed_beds_host_settings_and_removes_its_workdir(
    tmp_path: Path,
) -> None:
    panic = PROC_SYS / "kernel/panic"  # one of the settings a kubelet rewrites
    found = panic.read_text()
    workdir = tmp_path / "exalb-bed-killed"
    (workdir / "containerd").mkdir(parents=True)
    record = tmp_path / "bed.json"
    record.write_text(json.dumps({"workdir": str(workdir), **HostSettings().to_json()}))
    changed = "17\n" if found.strip() != "17" else "18\n"
    panic.write_text(changed)  # as the killed bed's kubelet left it
    try:
        _clear_leftovers(NAMESPACES, LINKS, record)
        assert panic.read_text() == found
    finally:
        panic.write_text(found)
    assert not workdir.exists() and not record.exists()
