# Sourced by the install-*.sh scripts: apt_install LABEL PACKAGE... installs
# the named Debian packages (none: says so and returns), or, when not root,
# fails naming them and the command that installs them.
apt_install() {
  local label=$1; shift
  if [ $# -eq 0 ]; then
    echo "$label: everything is installed"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "$label: missing Debian packages: $*" >&2
    echo "$label: install them as root: apt-get update && apt-get install -y $*" >&2
    exit 1
  fi
  echo "$label: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  echo "$label: installed $*"
}
