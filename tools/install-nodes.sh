#!/usr/bin/env bash
# Installs what the real-node test bed runs from Debian's packages: containerd
# and runc for each node's container runtime, the CNI plugins (bridge,
# host-local, loopback) for pod networking, iptables for kube-proxy, and
# mmdebstrap, which builds the exalb image's root file system. Idempotent:
# does nothing when every binary is already present.
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -eq 0 ]; then
  echo "nodes: containerd, runc, CNI plugins, iptables and mmdebstrap are installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "nodes: missing Debian packages: ${need[*]}" >&2
  echo "nodes: install them as root: apt-get update && apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "nodes: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# containerd's package enables a system service; each test node runs its own
# instance with its own socket, root and state directories.
systemctl disable --now containerd >/dev/null 2>&1 || true
echo "nodes: installed ${need[*]}"
