#!/usr/bin/env bash
# Installs the real BGP routers the tests peer with (GoBGP, BIRD 2, FRR)
# from Debian's packages, plus iproute2 for network namespaces. Idempotent:
# does nothing when every binary is already present.
set -euo pipefail
need=()
command -v gobgpd >/dev/null || need+=(gobgpd)
command -v bird >/dev/null || need+=(bird2)
[ -x /usr/lib/frr/bgpd ] || need+=(frr)
command -v ip >/dev/null || need+=(iproute2)
. "$(dirname "$0")/apt-install.sh"
apt_install routers ${need[@]+"${need[@]}"}
[ ${#need[@]} -eq 0 ] && exit 0
# The packages enable system services; the tests start their own instances.
for svc in bird frr gobgpd; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
  pkill -x "$svc" >/dev/null 2>&1 || true
done
