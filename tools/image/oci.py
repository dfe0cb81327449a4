"""Write a single-layer OCI image archive (index.json + blobs) without a daemon or registry.

The archive is what ``ctr images import``, ``skopeo copy oci-archive:...`` and
``crane push`` read, so the image the tests run is the image users push. The
layer is either a root file system tarball (mmdebstrap's output) or a few
files named on the command line (the static pause program). Gzip headers
carry no timestamp, so equal inputs give equal digests.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1 << 20


def files_layer(files: list[str], out: Path) -> None:
    """A layer tarball of ``DEST=SRC`` entries, owned by root, mode kept, mtime 0."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in files:
            dest, src = entry.split("=", 1)
            info = tar.gettarinfo(src, arcname=dest.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            with open(src, "rb") as f:
                tar.addfile(info, f)


def _gzip(src: Path, dest: Path) -> str:
    """Compress ``src`` into ``dest``; return the sha256 of the uncompressed bytes (diff_id)."""
    diff = hashlib.sha256()
    with (
        src.open("rb") as fin,
        dest.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as gz,
    ):
        while chunk := fin.read(CHUNK):
            diff.update(chunk)
            gz.write(chunk)
    return "sha256:" + diff.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class Blobs:
    """The ``blobs/sha256`` directory of an OCI layout being assembled."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"
        self.dir.mkdir(parents=True)

    def add_json(self, doc: dict[str, Any], media_type: str) -> dict[str, Any]:
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.dir / digest.removeprefix("sha256:")).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_file(self, path: Path, media_type: str) -> dict[str, Any]:
        digest = _file_digest(path)
        size = path.stat().st_size
        path.rename(self.dir / digest.removeprefix("sha256:"))
        return {"mediaType": media_type, "digest": digest, "size": size}


def write_archive(
    layer_tar: Path, name: str, out: Path, user: str, entrypoint: list[str], env: list[str]
) -> None:
    """Assemble the OCI layout in a temp dir, then tar it to ``out`` atomically."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        root = Path(tmp) / "layout"
        blobs = Blobs(root)
        compressed = Path(tmp) / "layer.tar.gz"
        diff_id = _gzip(layer_tar, compressed)
        layer = blobs.add_file(compressed, LAYER)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"User": user, "Env": env, "Entrypoint": entrypoint, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": blobs.add_json(config, CONFIG),
            "layers": [layer],
        }
        descriptor = blobs.add_json(manifest, MANIFEST)
        descriptor["platform"] = {"architecture": "amd64", "os": "linux"}
        descriptor["annotations"] = {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
        }
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
        index["manifests"] = [descriptor]
        (root / "index.json").write_text(json.dumps(index, indent=1))
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        partial = out.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            for path in sorted(root.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
        shutil.move(partial, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="image reference, e.g. localhost/exalb:0.1.0")
    p.add_argument("--out", required=True, type=Path, help="the OCI archive to write")
    p.add_argument("--rootfs", type=Path, help="a root file system tarball as the only layer")
    p.add_argument("--file", action="append", default=[], help="DEST=SRC, a file of the layer")
    p.add_argument("--user", default="0:0")
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    args = p.parse_args()
    if bool(args.rootfs) == bool(args.file):
        p.error("give either --rootfs or --file")
    with tempfile.TemporaryDirectory(dir=args.out.parent) as tmp:
        layer = args.rootfs
        if args.file:
            layer = Path(tmp) / "files.tar"
            files_layer(args.file, layer)
        write_archive(layer, args.name, args.out, args.user, args.entrypoint, args.env)


if __name__ == "__main__":
    main()
