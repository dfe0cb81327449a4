#!/usr/bin/env bash
# Builds Prometheus's promtool (for `promtool check rules` and `promtool test rules` on the
# chart's PrometheusRule) from the Go module proxy, at the version go.mod pins, into .bin/ at
# the repository root, or into $PROMTOOL_BIN_DIR. Idempotent: a binary newer than go.mod,
# go.sum and this script is left alone, so a warm run costs nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${PROMTOOL_BIN_DIR:-$root/.bin}
mkdir -p "$bin"
command -v go >/dev/null || { echo "go is required: install Go >= 1.26 (https://go.dev/doc/install or apt-get install golang)" >&2; exit 1; }
export CGO_ENABLED=0
cd "$here"

out="$bin/promtool"
if [ -x "$out" ] && [ ! go.mod -nt "$out" ] && [ ! go.sum -nt "$out" ] && [ ! build.sh -nt "$out" ]; then
  echo "promtool: up to date"
  exit 0
fi
version=$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)
echo "promtool: building from github.com/prometheus/prometheus $version"
start=$(date +%s)
go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version" \
  -o "$out.tmp" github.com/prometheus/prometheus/cmd/promtool
mv "$out.tmp" "$out"
echo "promtool: built in $(( $(date +%s) - start ))s"
