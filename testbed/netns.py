"""Network namespaces and veth links for the real-node test bed, through iproute2.

Every process of the bed enters its namespace with ``nsenter --net`` (never
``ip netns exec``, which also remounts /sys and so hides the cgroup file
systems a kubelet needs).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def ip(*args: str) -> str:
    """Run ``ip args``; raise with iproute2's own message on failure."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def enter(netns: str | None) -> list[str]:
    """The argv prefix that runs a command in ``netns`` (nothing for the host's)."""
    return ["nsenter", f"--net={NETNS_DIR / netns}", "--"] if netns else []


def run(netns: str | None, argv: Sequence[str]) -> str:
    done = subprocess.run(
        [*enter(netns), *argv], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {netns}: {done.stderr.strip()}")
    return done.stdout


def add(name: str) -> None:
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def delete(name: str) -> None:
    """Delete ``name`` if it exists: its veth ends go with it."""
    if (NETNS_DIR / name).exists():
        ip("netns", "delete", name)


def sysctl(netns: str, key: str, value: str) -> None:
    run(netns, ["sysctl", "-q", "-w", f"{key}={value}"])


def link(a: tuple[str | None, str, str], b: tuple[str, str, str]) -> None:
    """A veth pair between two namespaces: each end is (netns, ifname, address/prefix).

    A ``None`` namespace is the host's; every other end is created inside its
    namespace directly, so no name is ever taken in the host's.
    """
    (ns_a, if_a, _), (ns_b, if_b, _) = a, b
    side_a = ["name", if_a] + (["netns", ns_a] if ns_a else [])
    ip("link", "add", *side_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
    for ns, ifname, addr in (a, b):
        prefix = ["-n", ns] if ns else []
        ip(*prefix, "addr", "add", addr, "dev", ifname)
        ip(*prefix, "link", "set", ifname, "up")


def route(netns: str, *spec: str) -> None:
    ip("-n", netns, "route", "add", *spec)


def names(pattern: re.Pattern[str]) -> list[str]:
    """The namespaces whose whole name matches ``pattern``."""
    found = NETNS_DIR.iterdir() if NETNS_DIR.is_dir() else iter(())
    return sorted(p.name for p in found if pattern.fullmatch(p.name))


def host_links(pattern: re.Pattern[str]) -> list[str]:
    """The host's links whose whole name matches ``pattern``."""
    return sorted(p.name for p in Path("/sys/class/net").iterdir() if pattern.fullmatch(p.name))


def kill_all(name: str) -> int:
    """SIGKILL every process in namespace ``name``; how many there were."""
    pids = [int(p) for p in ip("netns", "pids", name).split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
