#!/usr/bin/env bash
# bench-systemd.sh [RUNTIME...] - create+start+delete with the systemd cgroup driver
# (--systemd-cgroup, a transient scope per container), berth against crun and runc, in ONE
# `vm-run --systemd` boot (systemd as PID 1, pure cgroup v2: crun 1.8.1 works there).
#
# RUNTIME is "label=path" or a path; default, or $BENCH_RUNTIMES:
#   berth=target/release/berth crun=crun runc=runc
# Ratios compare the FIRST runtime with each of the others. The VM is emulated (TCG), so
# absolute times mean nothing: only the ratios of medians are printed. Runs are
# interleaved: each round times one cycle of every runtime, the order rotating from round
# to round, so drift hits all alike.
#
# One cycle: `create` (cgroupsPath system.slice:benchsd:ID, /bin/true), `start`,
# `delete --force`, each runtime with its own --root.
#
# Environment: BENCH_SD_RUNS (cycles per runtime, default 40), BENCH_SD_WARMUP (3),
# BENCH_OUT (default build/bench-systemd: the raw times, in ns, and the ratios).
# Needs root, python3, ../shared/vm/vm-run (VM_RUN=path), busybox-static.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${BENCH_SD_RUNS:-40}
WARMUP=${BENCH_SD_WARMUP:-3}
OUT=${BENCH_OUT:-$REPO/build/bench-systemd}
VM_RUN=${VM_RUN:-$(dirname "$REPO")/shared/vm/vm-run}
die() { echo "bench-systemd: $*" >&2; exit 1; }

if [ "${1:-}" = --inner ]; then
  # ------------------------------------------------------------ in the VM
  shift
  W=$1
  shift
  LABELS=() BINS=()
  for s in "$@"; do LABELS+=("${s%%=*}"); BINS+=("${s#*=}"); done
  cycle() { # INDEX ID: one create+start+delete; prints the ns it took, or fails
    local b=${BINS[$1]} r=$W/root-${LABELS[$1]} t0 t1
    t0=$(date +%s%N)
    "$b" --root "$r" --systemd-cgroup create --bundle "$W/bundle-$2" "$2" >/dev/null &&
      "$b" --root "$r" --systemd-cgroup start "$2" &&
      "$b" --root "$r" --systemd-cgroup delete --force "$2" || return 1
    t1=$(date +%s%N)
    echo $((t1 - t0))
  }
  bundle() { # ID: a bundle dir whose cgroupsPath names a unit of its own
    mkdir -p "$W/bundle-$1"
    sed "s/@ID@/$1/" "$W/config.json" >"$W/bundle-$1/config.json"
  }
  n=0
  keep=()
  for i in "${!LABELS[@]}"; do
    mkdir -p "$W/root-${LABELS[$i]}"
    id=sdb-${LABELS[$i]}-probe
    bundle "$id"
    if cycle "$i" "$id" >/dev/null 2>"$W/probe.err"; then keep+=("$i")
    else echo "# ${LABELS[$i]}: a systemd-driver cycle failed, left out: $(head -c 300 "$W/probe.err")" >&2; fi
  done
  for i in "${keep[@]}"; do
    for ((k = 0; k < WARMUP; k++)); do id=sdb-${LABELS[$i]}-w$k; bundle "$id"; cycle "$i" "$id" >/dev/null || true; done
  done
  : >"$W/times"
  for ((round = 0; round < RUNS; round++)); do
    m=${#keep[@]}
    for ((j = 0; j < m; j++)); do
      i=${keep[$(((j + round) % m))]}
      id=sdb-${LABELS[$i]}-$round
      bundle "$id"
      t=$(cycle "$i" "$id" 2>>"$W/stderr.log") || { echo "# ${LABELS[$i]}: cycle $round failed" >&2; continue; }
      echo "${LABELS[$i]} $t" >>"$W/times"
      n=$((n + 1))
    done
  done
  left=$(systemctl list-units --all --plain --no-legend 'benchsd-*' | awk '{print $1}' | tr '\n' ' ')
  [ -z "$left" ] || echo "# units left after the benchmark: $left" >&2
  exit 0
fi

# ---------------------------------------------------------------- on the host
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$VM_RUN" ] || die "no VM runner at $VM_RUN"
if [ $# -gt 0 ]; then SPECS=("$@")
else
  # shellcheck disable=SC2206  # word splitting is the point
  SPECS=(${BENCH_RUNTIMES:-berth=$REPO/target/release/berth crun=crun runc=runc})
fi
ARGS=() LABELS=()
for s in "${SPECS[@]}"; do
  label=${s%%=*} bin=${s#*=}
  [ "$label" = "$s" ] && label=$(basename "$s")
  p=$(command -v "$bin") || { echo "# $label: $bin not found, left out" >&2; continue; }
  case $p in /*) ;; *) p=$PWD/$p ;; esac
  ARGS+=("$label=$p")
  LABELS+=("$label")
done
[ ${#ARGS[@]} -ge 2 ] || die "needs at least two runtimes to compare"
case "$OUT/" in /tmp/* | /run/*) die "BENCH_OUT must be outside /tmp and /run (the VM has its own)" ;; esac

rm -rf --one-file-system "$OUT"
mkdir -p "$OUT"
W=$OUT/work
bash "$REPO/scripts/mkbundle.sh" "$W/rootfs"
python3 - "$W/rootfs" "$W/config.json" <<'PY'
import json, sys
caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
c = {
  "ociVersion": "1.0.2-dev",
  "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"],
              "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "cwd": "/",
              "capabilities": {k: caps for k in ["bounding", "effective", "permitted", "ambient"]},
              "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
              "noNewPrivileges": True},
  "root": {"path": sys.argv[1], "readonly": True},
  "hostname": "bench",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
  ],
  "linux": {
    "cgroupsPath": "system.slice:benchsd:@ID@",
    "resources": {"devices": [{"allow": False, "access": "rwm"}],
                  "memory": {"limit": 268435456}, "pids": {"limit": 1024}},
    "namespaces": [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount"]],
  },
}
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY

echo "bench-systemd: ${LABELS[*]}, $RUNS interleaved create+start+delete cycles each (--systemd-cgroup), one vm-run --systemd boot"
"$VM_RUN" --systemd --timeout 1800 -e "BENCH_SD_RUNS=$RUNS" -e "BENCH_SD_WARMUP=$WARMUP" \
  -- bash "$REPO/scripts/bench-systemd.sh" --inner "$W" "${ARGS[@]}"
[ -s "$W/times" ] || die "no times recorded (see the messages above)"
cp "$W/times" "$OUT/times.txt"
python3 - "$OUT/times.txt" "${LABELS[@]}" <<'PY' | tee "$OUT/ratios.txt"
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    label, ns = line.split()
    times.setdefault(label, []).append(int(ns))
labels = [l for l in sys.argv[2:] if l in times]
first = labels[0]
print(f"systemd driver, create+start+delete: ratio of medians of {len(times[first])} interleaved"
      f" cycles each (below 1: {first} is faster; emulated VM: ratios only)")
for other in labels[1:]:
    r = statistics.median(times[first]) / statistics.median(times[other])
    print(f"  {first}/{other}: {r:.2f}")
PY
rm -rf --one-file-system "$W"
