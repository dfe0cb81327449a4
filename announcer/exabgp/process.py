"""Starting ExaBGP as our child so that it can never outlive us.

Three independent guards stop routes from staying announced after the
announcer is gone (exabgp#304):

* ``PR_SET_PDEATHSIG``: the kernel sends ExaBGP SIGTERM when the thread that
  spawned it dies (our supervisor thread lives as long as the process), and
  ExaBGP's SIGTERM handler closes its sessions;
* the API bridge SIGTERMs ExaBGP when our socket closes;
* ``exabgp_api_respawn=false``: ExaBGP never restarts the bridge itself.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from . import bridge, launcher

_PR_SET_PDEATHSIG = 1
# Resolved here, in the parent: the child between fork and exec only makes one syscall.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def exabgp_argv(binary: str | None) -> list[str]:
    """How to run ExaBGP: an explicit executable as given, else our patched launcher.

    The launcher is ExaBGP itself with six small fixes (see ``launcher``); an
    explicit ``--exabgp`` runs exactly that executable.
    """
    if binary:
        return [binary]
    return [sys.executable, "-I", str(Path(launcher.__file__).resolve())]


def bridge_argv(socket_path: str) -> list[str]:
    """Argv of the API process: this interpreter, isolated, running bridge.py directly."""
    return [sys.executable, "-I", "-S", str(Path(bridge.__file__).resolve()), socket_path]


def environment(log_level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("exabgp")}
    env.update(
        {
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_api_cli": "false",
            "exabgp_api_ack": "true",
            "exabgp_api_terminate": "true",
            "exabgp_api_respawn": "false",
            "exabgp_tcp_bind": "",
            "exabgp_log_destination": "stdout",
            "exabgp_log_level": log_level.upper(),
            # At debug, ExaBGP's "configuration" log echoes every config token, the MD5
            # password among them: at debug it is off (config errors then go unlogged
            # too); at other levels it holds only the reload notice and config errors.
            "exabgp_log_configuration": "false" if log_level.upper() == "DEBUG" else "true",
            "exabgp_log_parser": "false",
            "exabgp_log_all": "false",  # "all" would turn the two back on
        }
    )
    if os.getuid() == 0:
        # As root, ExaBGP would setuid() to "nobody", and a credential change clears
        # PR_SET_PDEATHSIG. It needs no privilege (MD5 and TTL options are per socket),
        # so run it as whoever runs the announcer.
        env["exabgp_daemon_user"] = "root"
    return env


def spawn(
    argv: list[str],
    config: Path,
    log_level: str,
    extra_env: Mapping[str, str] | None = None,
    await_go: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ExaBGP; with ``await_go`` (our launcher only) it waits for a line on stdin
    before reading ``config``, so it can be started before the config is written."""
    env = environment(log_level)
    if extra_env:
        env.update(extra_env)
    if await_go:
        env[launcher.AWAIT_GO_ENV] = "1"
    return subprocess.Popen(
        [*argv, "server", str(config)],
        stdin=subprocess.PIPE if await_go else subprocess.DEVNULL,
        stdout=sys.stderr,  # ExaBGP's own log joins ours (both are the container's log)
        stderr=subprocess.STDOUT,
        env=env,
        # One async-signal-safe syscall, no locks taken: safe despite our threads.
        preexec_fn=_die_with_parent,  # noqa: PLW1509
        process_group=0,  # a ^C to the announcer's group is the announcer's to handle
        close_fds=True,
    )
