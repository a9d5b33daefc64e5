#!/usr/bin/env bash
# deps.sh - install, with apt-get, whatever of berth's build/test/bench tools is missing.
# Quick and silent when everything is there; runs "apt-get update" once when not.
set -euo pipefail

# package:check  (check = a command on PATH, an absolute path, or "dpkg" for the package itself)
WANT=(
  libseccomp-dev:dpkg
  pkg-config:pkg-config
  gcc:gcc
  libc6-dev:dpkg
  dbus-daemon:dbus-daemon
  busybox-static:dpkg
  open-adventure:/usr/games/advent
  runc:runc
  crun:crun
  hyperfine:hyperfine
  time:/usr/bin/time
  python3:python3
  golang-github-containers-common:dpkg
  apparmor:apparmor_parser
  podman:podman
  conmon:conmon
  containerd:containerd
  docker.io:/usr/sbin/dockerd
  protobuf-compiler:protoc
  containernetworking-plugins:/usr/lib/cni/loopback
  uidmap:newuidmap
  musl-tools:musl-gcc
  gperf:gperf
)

have() {
  local pkg=$1 check=$2
  case $check in
    dpkg) dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ;;
    /*) [ -x "$check" ] ;;
    *) command -v "$check" >/dev/null 2>&1 || [ -x "/usr/sbin/$check" ] || [ -x "/sbin/$check" ] ;;
  esac
}

missing=()
for w in "${WANT[@]}"; do
  have "${w%%:*}" "${w#*:}" || missing+=("${w%%:*}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for w in "${WANT[@]}"; do
  have "${w%%:*}" "${w#*:}" || { echo "deps: ${w%%:*} still missing after apt-get install" >&2; exit 1; }
done
