#!/usr/bin/env bash
# run.sh RUNTIME_PATH [check|bench] - the runtime as a Kubernetes node's runtime: a private
# containerd with its CRI plugin, a RuntimeClass handler whose runc shim v2 calls RUNTIME
# (BinaryName), and cri-tests (integration/cri, a CRI client) driving it as the kubelet does.
#
# check (default): one pod through the kubelet's calls (see src/main.rs), one line per
#   check, then "cri: N passed, M failed". The handler is "runc" when RUNTIME is named runc,
#   else "berth"; both are configured (BinaryName RUNTIME, and /usr/sbin/runc).
# bench: pod start (RunPodSandbox + CreateContainer + StartContainer) and teardown
#   (StopPodSandbox + RemovePodSandbox) through CRI, handlers berth (RUNTIME) and runc
#   interleaved on the same containerd (BENCH_RUNS, default 20), with the ratio; then the
#   runtime's share of a pod start, from handlers whose BinaryName is a wrapper that
#   times each runtime call.
#
# Everything is private, under one `mktemp -d` directory: containerd's root, state, sockets
# and config, the runtime roots, the CNI config (loopback only: pods use the host network),
# pod logs and volumes. Pods' cgroups go under a cgroup parent named after that directory
# (cgroupfs), or, with CRI_SYSTEMD=1 (SystemdCgroup = true), under a
# kubepods-burstable-podUID.slice. The image is a local busybox (no registry, no network);
# the sandbox ("pause") image is the same busybox, whose command sleeps.
# Cleanup (trap, also on failure or ^C) stops containerd, kills what is left, unmounts,
# removes cgroups and the directory, and checks that nothing is left behind.
#
# Settings: CRI_BIN (the cri-tests binary; default target/release/cri-tests), CRI_SYSTEMD=1,
# CRI_SHORT=1 (the shorter flow of the systemd VM), CRI_SNAPSHOTTER (default overlayfs),
# CRI_LOGS=DIR (keep containerd's log), RUNC (default /usr/sbin/runc), BENCH_RUNS,
# CRI_LIBTEST=1 (also a libtest-style "test result:" line).
# Needs root, containerd (1.6, CRI built in), ctr, containerd-shim-runc-v2, busybox-static,
# the CNI loopback plugin (/usr/lib/cni).
set -uo pipefail

usage() { echo "usage: $0 RUNTIME_PATH [check|bench]" >&2; exit 2; }
[ $# -ge 1 ] || usage
REPO=$(cd "$(dirname "$0")/../.." && pwd)
RUNTIME=$1
MODE=${2:-check}
case $MODE in check | bench) ;; *) usage ;; esac
case "$RUNTIME" in
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" 2>/dev/null && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac
[ -f "$RUNTIME" ] && [ -x "$RUNTIME" ] || { echo "cri: runtime $RUNTIME: not an executable file" >&2; exit 2; }
RUNC=${RUNC:-/usr/sbin/runc}
CRI_BIN=${CRI_BIN:-$REPO/target/release/cri-tests}
[ -x "$CRI_BIN" ] || { echo "cri: no $CRI_BIN (cargo build --release -p cri-tests)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "cri: needs root" >&2; exit 2; }
SNAP=${CRI_SNAPSHOTTER:-overlayfs}
SYSTEMD=${CRI_SYSTEMD:-0}
CNI_BIN=/usr/lib/cni
[ -x "$CNI_BIN/loopback" ] || { echo "cri: no CNI loopback plugin in $CNI_BIN (containernetworking-plugins)" >&2; exit 2; }

case $(basename "$RUNTIME") in runc*) HANDLER=runc ;; *) HANDLER=berth ;; esac
IMG=localhost/busybox:cri
T=$(mktemp -d /tmp/cri.XXXXXX)
chmod 755 "$T"
CG=/$(basename "$T")
C=$T/ctrd
SOCK=$C/containerd.sock
STARTED=$(date +%s)
# What containerd makes outside $T whatever its configuration: removed at the end when it
# was not there before. TOP:file-or-dir... (removed in that order)
HOST_PATHS=(/run/containerd:/run/containerd/s:/run/containerd/fifo)
NEW_HOST_PATHS=()
for h in "${HOST_PATHS[@]}"; do [ -e "${h%%:*}" ] || NEW_HOST_PATHS+=("$h"); done

PASSED=0
FAILED=0
ok() { echo "ok   cri: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL cri: $1 ($2)"; FAILED=$((FAILED + 1)); }
oneline() { printf '%s' "$*" | tr '\n\t' '| ' | sed 's/  */ /g' | cut -c1-300; }
q() { timeout -k 2 15 "$@" 2>/dev/null </dev/null; }
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}

# ---------------------------------------------------------------------------------------
# the image: busybox-static, a link per applet; its command sleeps (the sandbox's "pause")

make_image() {
  local r=$T/image/rootfs d diff cfg cfgsha arch
  mkdir -p "$r"/{bin,dev,etc,proc,root,sys,tmp,var} || return 1
  cp /bin/busybox "$r/bin/busybox" || return 1
  for a in $(/bin/busybox --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  chmod 1777 "$r/tmp"
  d=$T/image/save
  mkdir -p "$d"
  tar --numeric-owner -C "$r" -cf "$d/layer.tar" . || return 1
  diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
  cfg='{"architecture":"'$arch'","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sleep","2147483647"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$diff'"]},"history":[{"created_by":"integration/cri/run.sh"}]}'
  printf '%s' "$cfg" >"$d/config.json"
  cfgsha=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/$cfgsha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfgsha" "$IMG" >"$d/manifest.json"
  tar -C "$d" -cf "$T/image/save.tar" manifest.json "$cfgsha.json" layer.tar
}

# ---------------------------------------------------------------------------------------
# containerd with the CRI plugin

# handler NAME BINARY: a RuntimeClass handler, the runc shim v2 calling BINARY
handler() {
  local p="plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.$1"
  local sd=false
  [ "$SYSTEMD" = 1 ] && sd=true
  mkdir -p "$T/rt/$1"
  cat <<EOF

[$p]
  runtime_type = "io.containerd.runc.v2"
[$p.options]
  BinaryName = "$2"
  Root = "$T/rt/$1"
  SystemdCgroup = $sd
EOF
}

# timed NAME BINARY: a wrapper that runs BINARY and logs each call's verb and duration in
# microseconds to $T/timed-NAME.log (for the runtime's share of a pod start)
timed() {
  cat >"$T/timed-$1" <<EOF
#!/bin/bash
s=\${EPOCHREALTIME/./}
"$2" "\$@"
rc=\$?
e=\${EPOCHREALTIME/./}
v=
for a in "\$@"; do case \$a in create|start|delete|kill|state|exec|update|pause|resume|ps|events) v=\$a; break ;; esac; done
echo "\$v \$((e - s))" >>"$T/timed-$1.log"
exit \$rc
EOF
  chmod 755 "$T/timed-$1"
}

containerd_start() {
  mkdir -p "$C"/{root,state,opt} "$T/cni/net.d" "$T/logs" "$T/vol"
  # loopback only: pods use the host network, so this is never called for them; containerd
  # wants a network config to report the node's network ready
  cat >"$T/cni/net.d/10-loopback.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "cri-tests-lo", "plugins": [{"type": "loopback"}]}
EOF
  {
    cat <<EOF
version = 2
root = "$C/root"
state = "$C/state"
oom_score = 0

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMG"
  # root here lacks CAP_SYS_RESOURCE: an oom_score_adj below containerd's own is refused
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "$SNAP"
  default_runtime_name = "$HANDLER"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "$CNI_BIN"
  conf_dir = "$T/cni/net.d"
EOF
    if [ "$HANDLER" = berth ]; then
      handler berth "$RUNTIME"
      handler runc "$RUNC"
    else
      handler runc "$RUNTIME"
    fi
    if [ "$MODE" = bench ]; then
      timed berth "$RUNTIME"
      timed runc "$RUNC"
      handler berth-timed "$T/timed-berth"
      handler runc-timed "$T/timed-runc"
    fi
  } >"$C/config.toml"
  containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
  CTRD_PID=$!
  if ! wait_for 30 ctrd_up; then
    SETUP_ERR="containerd did not come up in 30 s: $(oneline "$(tail -n 5 "$C/containerd.log")")"
    return 1
  fi
  local out
  if ! out=$(timeout 120 ctr -a "$SOCK" -n k8s.io images import --snapshotter "$SNAP" "$T/image/save.tar" 2>&1); then
    SETUP_ERR="ctr images import: $(oneline "$out")"
    return 1
  fi
}
ctrd_up() { kill -0 "$CTRD_PID" 2>/dev/null && q ctr -a "$SOCK" version >/dev/null; }

# ---------------------------------------------------------------------------------------
# cleanup

our_pids() {
  grep -lsFf <(printf '%s\n' "$T/") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
  find /sys/fs/cgroup/*/"${CG#/}" /sys/fs/cgroup/"${CG#/}" -name cgroup.procs -exec cat {} + 2>/dev/null
}
our_mounts() { awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
our_cgroups() { find /sys/fs/cgroup/*/"${CG#/}" /sys/fs/cgroup/"${CG#/}" -depth -type d 2>/dev/null; }
# systemd: the units made for the pods: our pod slice, the containers' scopes, and the
# slices above the pod's (kubepods.slice, kubepods-burstable.slice) when they were not
# there before (the kubelet would keep them; a throw-away VM runs this)
KUBEPODS_NEW=0
if [ "$SYSTEMD" = 1 ] && [ "$(systemctl show -p LoadState --value kubepods.slice 2>/dev/null)" != loaded ]; then
  KUBEPODS_NEW=1
fi
our_units() {
  [ "$SYSTEMD" = 1 ] || return 0
  local re="kubepods-burstable-pod${CG#/cri.}\\.slice|cri-containerd-.*\\.scope"
  [ $KUBEPODS_NEW = 1 ] && re="$re|kubepods\\.slice|kubepods-burstable\\.slice"
  systemctl list-units --all --plain --no-legend 2>/dev/null | awk '{print $1}' | grep -E "^($re)$" || true
}

CLEANED=0
cleanup() {
  local i pids m d f id left=""
  [ $CLEANED = 1 ] && return 0
  CLEANED=1
  if [ -n "${CRI_LOGS:-}" ]; then
    mkdir -p "$CRI_LOGS" && cp "$C/containerd.log" "$CRI_LOGS/" 2>/dev/null
  fi
  if [ -n "${CTRD_PID:-}" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
    for id in $(q ctr -a "$SOCK" -n k8s.io tasks ls -q); do
      q ctr -a "$SOCK" -n k8s.io tasks delete -f "$id" >/dev/null
    done
    for id in $(q ctr -a "$SOCK" -n k8s.io containers ls -q); do
      q ctr -a "$SOCK" -n k8s.io containers delete "$id" >/dev/null
    done
    kill -TERM "$CTRD_PID" 2>/dev/null
    for i in $(seq 1 150); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CTRD_PID" 2>/dev/null
    wait "$CTRD_PID" 2>/dev/null
  fi
  # last resort: whatever is still running (frozen cgroups thawed first)
  d=/sys/fs/cgroup/freezer/${CG#/}
  [ -d "$d" ] && find "$d" -name freezer.state -exec sh -c 'echo THAWED > "$1"' sh {} \; 2>/dev/null
  for i in 1 2 3 4 5; do
    pids=$(our_pids | sort -u)
    [ -n "$pids" ] || break
    kill -KILL $pids 2>/dev/null
    sleep 0.2
  done
  # a shim killed so leaves its socket in /run/containerd/s: each names it in its bundle
  for f in "$C"/state/io.containerd.runtime.v2.task/*/*/address; do
    [ -f "$f" ] || continue
    m=$(sed -n 's|^unix://\(/run/containerd/s/[0-9a-f]*\)$|\1|p' "$f")
    [ -z "$m" ] || [ ! -S "$m" ] || rm -f "$m"
  done
  for u in $(our_units); do systemctl stop "$u" >/dev/null 2>&1; done
  for i in 1 2 3; do
    for m in $(our_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    [ -z "$(our_mounts)" ] && break
  done
  for i in 1 2 3 4 5; do
    for d in $(our_cgroups); do rmdir "$d" 2>/dev/null; done
    [ -z "$(our_cgroups)" ] && break
    sleep 0.2
  done
  [ -z "$(our_mounts)" ] && rm -rf --one-file-system "$T"
  local h
  for h in ${NEW_HOST_PATHS[@]+"${NEW_HOST_PATHS[@]}"}; do
    IFS=: read -r -a f <<<"$h"
    for d in "${f[@]:1}" "${f[0]}"; do
      if [ -d "$d" ]; then rmdir "$d" 2>/dev/null; else rm -f "$d"; fi
    done
    [ ! -e "${f[0]}" ] || left="$left ${f[0]} (was not there before): $(ls -A "${f[0]}" | tr '\n' ' ');"
  done
  pids=$(our_pids | sort -u | tr '\n' ' ')
  [ -z "$pids" ] || left="$left processes: $pids;"
  m=$(our_mounts | tr '\n' ' ')
  [ -z "$m" ] || left="$left mounts: $m;"
  d=$(our_cgroups | tr '\n' ' ')
  [ -z "$d" ] || left="$left cgroups: $d;"
  d=$(our_units | tr '\n' ' ')
  [ -z "$d" ] || left="$left units: $d;"
  [ ! -e "$T" ] || left="$left directory $T;"
  CLEANUP_LEFT=$left
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup' EXIT

# ---------------------------------------------------------------------------------------

echo "cri: RUNTIME=$RUNTIME, handler $HANDLER, $MODE, scratch $T$([ "$SYSTEMD" = 1 ] && echo ", SystemdCgroup = true")"
rc=0
SETUP_ERR=
if ! make_image >"$T/image.log" 2>&1; then
  fail "setup" "busybox image: $(oneline "$(cat "$T/image.log")")"
elif ! containerd_start; then
  fail "setup" "$SETUP_ERR"
else
  if [ "$SYSTEMD" = 1 ]; then
    # kubelet's systemd driver names pod slices so: kubepods-burstable-podUID.slice
    CG_PARENT=kubepods-burstable-pod${CG#/cri.}.slice
  else
    CG_PARENT=$CG
  fi
  export CRI_SOCK=$SOCK CRI_IMAGE=$IMG CRI_SCRATCH=$T CRI_CG_PARENT=$CG_PARENT
  export CRI_HANDLER=$HANDLER CRI_RT_ROOT=$T/rt/$HANDLER/k8s.io
  if [ "$MODE" = check ]; then
    timeout -k 5 300 "$CRI_BIN" check >"$T/check.out" 2>&1
    rc=$?
    cat "$T/check.out"
    PASSED=$((PASSED + $(grep -c '^ok   cri:' "$T/check.out")))
    FAILED=$((FAILED + $(grep -c '^FAIL cri:' "$T/check.out")))
    [ $rc = 0 ] || grep -q '^FAIL cri:' "$T/check.out" || fail "cri-tests" "exit $rc: $(oneline "$(tail -n 3 "$T/check.out")")"
  else
    BENCH_HANDLERS="berth runc" timeout -k 5 1200 "$CRI_BIN" bench >"$T/bench.out" 2>&1 || rc=$?
    cat "$T/bench.out"
    if [ $rc = 0 ]; then
      # The same again through wrappers that time each runtime call (their own bash start
      # is outside what they measure, but slows the wrapped pods: their totals are not used)
      BENCH_RUNS=${BENCH_SHARE_RUNS:-10} BENCH_HANDLERS="berth-timed runc-timed" \
        timeout -k 5 1200 "$CRI_BIN" bench >"$T/timed.out" 2>&1 || rc=$?
      if [ $rc = 0 ]; then
        echo
        echo "the runtime's share (each runtime call timed through a wrapper; medians of the plain runs above):"
        for h in berth runc; do
          python3 - "$T/timed-$h.log" "${BENCH_SHARE_RUNS:-10}" "$T/bench.out" "$h" <<'PY'
import sys, collections
log, runs, bench, h = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
start = down = None
for line in open(bench):
    f = line.split()
    if f and f[0] == h and len(f) == 4:
        start, down = float(f[1]), float(f[2])
per = collections.defaultdict(float)
n = collections.Counter()
for line in open(log):
    v, us = line.split()
    per[v] += int(us) / 1000.0
    n[v] += 1
pods = runs + 1  # the warm-up pod is in the log too
ms = {v: per[v] / pods for v in per}
calls = ", ".join(f"{v} {n[v] // pods}x {ms[v]:.1f} ms" for v in sorted(ms))
s_rt = ms.get("create", 0) + ms.get("start", 0)
d_rt = sum(ms.values()) - s_rt
print(f"{h:<6} pod start {start:.1f} ms: runtime create+start {s_rt:.1f} ms ({100 * s_rt / start:.0f}%); "
      f"teardown {down:.1f} ms: runtime {d_rt:.1f} ms ({100 * d_rt / down:.0f}%); per pod: {calls}")
PY
        done
      else
        cat "$T/timed.out"
      fi
    fi
  fi
fi

cleanup
if [ -z "$CLEANUP_LEFT" ]; then ok "nothing left behind (containerd, processes, mounts, cgroups, $T)"
else fail "nothing left behind" "${CLEANUP_LEFT# }"; fi
if [ "$MODE" = check ]; then
  echo "cri (RUNTIME=$RUNTIME, handler $HANDLER) took $(($(date +%s) - STARTED)) s"
  echo "cri: $PASSED passed, $FAILED failed"
  # for scripts/test-systemd.sh, which counts libtest-style result lines
  [ "${CRI_LIBTEST:-0}" = 1 ] && echo "test result: $([ "$FAILED" = 0 ] && echo ok || echo FAILED). $PASSED passed; $FAILED failed"
  [ "$FAILED" = 0 ] && [ $rc = 0 ]
else
  [ "$FAILED" = 0 ] && [ $rc = 0 ]
fi
