"""exalbctl: a read-only client that answers "is my VIP served, and if not, why".

Exit codes (``exalbctl.exits``): 0 all is well, 1 something needs a look, 2 usage,
3 the cluster or an input could not be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from exalbctl import exits
from exalbctl.cluster import ClusterError
from exalbctl.commands import explain, migrate, peers, status
from exalbctl.output import FORMATS

COMMANDS = (status, peers, explain, migrate)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes, after its name (``exalbctl status -o json``)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context to use (default its current-context)")
    p.add_argument(
        "-n",
        "--exalb-namespace",
        default="exalb-system",
        help="namespace exalb runs in (default exalb-system)",
    )
    p.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        help="output format (default table; yaml for migrate, whose output is objects)",
    )
    return p


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="exalbctl",
        description="Read-only operator CLI for exalb. Exit codes: 0 all is well, "
        "1 something needs a look, 2 usage error, 3 the cluster or an input could not be read.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    for command in COMMANDS:
        command.add_parser(sub, common)
    return p


def run(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args, out, err)
    except ClusterError as exc:
        err.write(f"exalbctl: {exc}\n")
        return exits.UNREADABLE
    except migrate.InputError as exc:
        err.write(f"exalbctl: {exc}\n")
        return exits.UNREADABLE
    return code


def main() -> None:
    sys.exit(run(None, sys.stdout, sys.stderr))
