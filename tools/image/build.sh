#!/usr/bin/env bash
# Builds exalb's container image without a Docker daemon or a registry: a
# Debian minbase root file system (mmdebstrap) with python3 and a venv holding
# the project's wheel and its dependencies (ExaBGP included), run as a fixed
# non-root user, packed as a single-layer OCI archive by oci.py. Also packs
# the static pause program (built by tools/kubebin) as the nodes' sandbox
# image. Idempotent: each archive is rebuilt only when the hash of its inputs
# (the wheel's sources, this recipe, oci.py; the pause binary) changes.
# Dependencies are resolved within pyproject.toml's ranges when it rebuilds.
#
#   .build/exalb-image.oci.tar   localhost/exalb:<version>
#   .build/pause-image.oci.tar   localhost/exalb-pause:1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/.build"
py="$root/.venv/bin/python"
SUITE=bookworm
EXALB_UID=65532
mkdir -p "$out"
command -v mmdebstrap >/dev/null || bash "$root/tools/install-nodes.sh"
[ -x "$py" ] || { echo "image: $py is missing: run make venv" >&2; exit 1; }

build_pause() {
  local pause="$root/.bin/pause" stamp="$out/pause-image.inputs" sum
  [ -x "$pause" ] || { echo "image: $pause is missing: run make kubebin" >&2; exit 1; }
  sum=$(cat "$pause" "$here/oci.py" | sha256sum | cut -d' ' -f1)
  if [ -f "$out/pause-image.oci.tar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    echo "image: pause image is up to date"
    return
  fi
  "$py" "$here/oci.py" --name localhost/exalb-pause:1 --out "$out/pause-image.oci.tar" \
    --file "/pause=$pause" --entrypoint /pause --user 65535:65535
  echo "$sum" >"$stamp"
  echo "image: wrote $out/pause-image.oci.tar"
}

build_exalb() {
  local wheels="$out/wheels" stamp="$out/exalb-image.inputs" sum version rootfs start pipwhl
  # Every file the wheel is built from (paths and contents), and the recipe.
  sum=$(cd "$root" && find allocator announcer exalb exalbctl pyproject.toml README.md \
      tools/image/build.sh tools/image/oci.py -type f ! -path '*__pycache__*' -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  if [ -f "$out/exalb-image.oci.tar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    echo "image: exalb image is up to date"
    return
  fi
  rm -rf "$wheels" "$root/build"
  "$py" -m pip wheel -q --wheel-dir "$wheels" "$root" pip
  rm -rf "$root/build"
  version=$(basename "$wheels"/exalb-*.whl | cut -d- -f2)
  rootfs="$out/exalb-rootfs.tar"
  start=$(date +%s)
  pipwhl=$(cd "$wheels" && ls pip-*.whl)
  # The venv's pip runs from its wheel and is never installed: the image has no
  # pip, no compilers, no apt lists or caches (mmdebstrap cleans those).
  # exalb uses the synchronous Kubernetes client only; kubernetes/aio is a
  # second copy of the whole API (~70 MB). The last hook proves both
  # programs still import.
  local inside='chroot "$1" env -i PATH=/usr/bin:/bin'
  mmdebstrap --variant=minbase --format=tar --include=python3 \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="cp -r '$wheels' \"\$1/tmp/wheels\"" \
    --customize-hook="$inside python3 -m venv --without-pip /opt/exalb" \
    --customize-hook="$inside /opt/exalb/bin/python /tmp/wheels/$pipwhl/pip install -q \
      --no-index --no-cache-dir --find-links /tmp/wheels exalb" \
    --customize-hook='rm -rf "$1/tmp/wheels" "$1/root/.cache" "$1"/opt/exalb/lib/python3*/site-packages/kubernetes/aio' \
    --customize-hook="$inside /opt/exalb/bin/python -c 'import allocator.main, announcer.main'" \
    --customize-hook="echo 'exalb:x:$EXALB_UID:$EXALB_UID:exalb:/nonexistent:/usr/sbin/nologin' >>\"\$1/etc/passwd\"" \
    --customize-hook="echo 'exalb:x:$EXALB_UID:' >>\"\$1/etc/group\"" \
    "$SUITE" "$rootfs" \
    "deb http://deb.debian.org/debian $SUITE main" \
    "deb http://deb.debian.org/debian $SUITE-updates main" \
    "deb http://deb.debian.org/debian-security $SUITE-security main"
  "$py" "$here/oci.py" --name "localhost/exalb:$version" --out "$out/exalb-image.oci.tar" \
    --rootfs "$rootfs" --user "$EXALB_UID:$EXALB_UID" \
    --env PATH=/opt/exalb/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PYTHONDONTWRITEBYTECODE=1 --entrypoint /opt/exalb/bin/exalb-announcer
  rm -f "$rootfs"
  echo "$sum" >"$stamp"
  echo "image: wrote $out/exalb-image.oci.tar (localhost/exalb:$version," \
    "$(du -m "$out/exalb-image.oci.tar" | cut -f1) MiB) in $(( $(date +%s) - start ))s"
}

build_pause
build_exalb
