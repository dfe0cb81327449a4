"""``exalbctl migrate metallb``: MetalLB objects from the cluster or files -> exalb YAML + report.

Reads only; it never creates anything. Review the output, then ``kubectl apply`` it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from exalbctl import exits
from exalbctl.cluster import connect
from exalbctl.core.mapping import Obj
from exalbctl.core.migrate import Migration, migrate
from exalbctl.core.migrate_report import report_text, summary_data, summary_table
from exalbctl.output import render, yaml_documents

# (apiVersion, plural): what MetalLB serves today.
METALLB_KINDS = (
    ("metallb.io/v1beta1", "ipaddresspools"),
    ("metallb.io/v1beta2", "bgppeers"),
    ("metallb.io/v1beta1", "bgpadvertisements"),
    ("metallb.io/v1beta1", "communities"),
    ("metallb.io/v1beta1", "bfdprofiles"),
)
SUFFIXES = (".yaml", ".yml", ".json")


class InputError(Exception):
    """An input file that cannot be read or parsed."""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    migrate_p = sub.add_parser("migrate", help="write exalb objects equivalent to another LB's")
    targets = migrate_p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    p = targets.add_parser(
        "metallb",
        parents=[common],
        help="IPAddressPool, BGPPeer, BGPAdvertisement, Community -> VIPPool, BGPPeer",
        description="Print exalb's VIPPools and BGPPeers equivalent to MetalLB's objects "
        "(YAML by default; -o table prints a summary), and a report of every field that "
        "could not be carried over. Exit 1 with --strict when a field was not carried over.",
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="read MetalLB objects from this YAML/JSON file, directory or - (stdin); "
        "repeatable. Without it, read them from the cluster",
    )
    p.add_argument(
        "--metallb-namespace",
        default="metallb-system",
        help="where MetalLB's objects are, when read from the cluster (default metallb-system)",
    )
    p.add_argument(
        "--bgp-secrets-namespace",
        default=None,
        help="the announcers' BGP secrets namespace, where password Secrets must be copied "
        "(default <exalb namespace>-bgp-secrets, as the chart's bgpSecretsNamespace)",
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        help="write one YAML file per object here and print a summary instead of the objects",
    )
    p.add_argument("--report", type=Path, help="write the report here instead of stderr")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when any field could not be carried over"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    objects = read_files(args.filename) if args.filename else read_cluster(args)
    m = migrate(objects, args.exalb_namespace, args.bgp_secrets_namespace)
    files = write_files(m, args.output_dir) if args.output_dir else {}
    out.write(render_objects(m, files, args.output or ("table" if files else "yaml")))
    text = report_text(m)
    if args.report:
        args.report.write_text(text)
    else:
        err.write(text)
    return exits.PROBLEMS if args.strict and m.lost else exits.OK


def render_objects(m: Migration, files: dict[int, str], fmt: str) -> str:
    if files or fmt == "table":
        return render(summary_data(m, files), [summary_table(m, files)], fmt)
    if fmt == "json":
        return (
            json.dumps({"apiVersion": "v1", "kind": "List", "items": list(m.objects)}, indent=2)
            + "\n"
        )
    return yaml_documents(m.objects)


def read_cluster(args: argparse.Namespace) -> list[Obj]:
    cluster = connect(args.kubeconfig, args.context)
    objects: list[Obj] = []
    for api_version, plural in METALLB_KINDS:
        for o in cluster.list(api_version, plural, args.metallb_namespace):
            # A list's items carry neither apiVersion nor kind: put them back.
            objects.append({"apiVersion": api_version, "kind": _kind(plural), **o})
    return objects


def _kind(plural: str) -> str:
    return {
        "ipaddresspools": "IPAddressPool",
        "bgppeers": "BGPPeer",
        "bgpadvertisements": "BGPAdvertisement",
        "communities": "Community",
        "bfdprofiles": "BFDProfile",
    }[plural]


def read_files(paths: list[str]) -> list[Obj]:
    objects: list[Obj] = []
    for name in paths:
        if name == "-":
            objects += parse_documents(sys.stdin.read(), "stdin")
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise InputError(f"{name}: no such file or directory")
        for f in files:
            try:
                text = f.read_text()
            except OSError as exc:
                raise InputError(f"{f}: {exc}") from exc
            objects += parse_documents(text, str(f))
    return objects


def parse_documents(text: str, where: str) -> list[Obj]:
    """Every mapping of a multi-document YAML (JSON is YAML) stream."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML: {exc}") from exc
    bad = [i for i, d in enumerate(docs) if d is not None and not isinstance(d, dict)]
    if bad:
        raise InputError(f"{where}: document {bad[0] + 1} is not an object")
    return [d for d in docs if d]


def write_files(m: Migration, directory: Path) -> dict[int, str]:
    """One file per object, ``vippool-<name>.yaml`` / ``bgppeer-<name>.yaml``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for i, o in enumerate(m.objects):
        path = directory / f"{o['kind'].lower()}-{o['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(o, sort_keys=False))
        files[i] = str(path)
    return files
