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
if [ ${#need[@]} -eq 0 ]; then
  echo "routers: gobgpd, bird and frr bgpd are installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "routers: missing Debian packages: ${need[*]}" >&2
  echo "routers: install them as root: apt-get update && apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "routers: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages enable system services; the tests start their own instances.
for svc in bird frr gobgpd; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
  pkill -x "$svc" >/dev/null 2>&1 || true
done
echo "routers: installed ${need[*]}"
