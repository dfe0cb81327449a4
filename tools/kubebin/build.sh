#!/usr/bin/env bash
# Builds the real Kubernetes control plane (kube-apiserver, etcd,
# kube-controller-manager, kube-scheduler), the node components (kubelet,
# kube-proxy), the sandbox image's pause program, kubectl and helm from the
# Go module proxy into .bin/ at the repository root. Idempotent: a binary
# newer than go.mod, go.sum and its main.go is left alone, so a warm run
# costs nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/.bin"
mkdir -p "$bin"
command -v go >/dev/null || { echo "go is required: install Go >= 1.26 (https://go.dev/doc/install or apt-get install golang)" >&2; exit 1; }

K8S_VERSION=v1.37.2
HELM_VERSION=v3.22.0
export CGO_ENABLED=0
cd "$here"

fresh() { # fresh OUT SRC...: true when OUT exists and is newer than every SRC
  local out=$1; shift
  [ -x "$out" ] || return 1
  local s
  for s in "$@"; do [ "$s" -nt "$out" ] && return 1; done
  return 0
}

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldf="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy pause kubectl etcd; do
  if fresh "$bin/$cmd" go.mod go.sum "cmd/$cmd/main.go" build.sh; then
    echo "kubebin: $cmd is up to date"
    continue
  fi
  echo "kubebin: building $cmd"
  start=$(date +%s)
  go build -trimpath -ldflags "$ldf" -o "$bin/$cmd.tmp" "./cmd/$cmd"
  mv "$bin/$cmd.tmp" "$bin/$cmd"
  echo "kubebin: built $cmd in $(( $(date +%s) - start ))s"
done

if fresh "$bin/helm" build.sh; then
  echo "kubebin: helm is up to date"
else
  echo "kubebin: building helm $HELM_VERSION"
  GOBIN="$bin" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
