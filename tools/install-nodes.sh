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
. "$(dirname "$0")/apt-install.sh"
apt_install nodes ${need[@]+"${need[@]}"}
# containerd's package enables a system service; each test node runs its own
# instance with its own socket, root and state directories.
[ ${#need[@]} -eq 0 ] || systemctl disable --now containerd >/dev/null 2>&1 || true
