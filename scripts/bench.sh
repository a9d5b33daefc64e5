#!/usr/bin/env bash
# bench.sh [RUNTIME...] - berth's benchmark: berth, crun and runc on one busybox bundle.
#
# RUNTIME is "label=path" or a path (label = its basename); default, or $BENCH_RUNTIMES:
#   berth=target/release/berth crun=crun runc=runc
# A runtime that is not installed, or fails a functional check, is left out with a note.
# Ratios compare the FIRST runtime with each of the others.
#
# Measures (hyperfine, medians; each runtime has its own --root in a temp dir):
#   run+delete   "run" of /bin/true, then "delete -f"
#   run+delete-limits   the same with a memory and a pids limit
#   run+delete-seccomp  the same with Podman's default seccomp profile
#                (/usr/share/containers/seccomp.json converted as Podman does)
#   run+delete-rootless  run+delete by an ordinary user (BENCH_ROOTLESS_USER, default
#                berth-rootless, made if missing) of the same bundle made rootless (a user
#                namespace mapping the user to root, no network namespace, /sys bound):
#                each runtime started through setpriv, whose exec every runtime pays alike
#   create       "create" alone   (prepare: the container is absent)
#   start        "start" alone    (prepare: the container is created)
#   delete       "delete" alone   (prepare: the container ran and stopped)
#   exec         "exec ID /bin/true" in the foreground (prepare: a container runs sleep)
#   version      "--version": the start-up floor of the binary, no container
#   state        "state" of a created container
#   run          "run" of /bin/true in the foreground alone (it deletes the container itself)
#   create+start+delete   the three verbs in a row, then "delete -f"
#   seq-100      100 x create+start+delete -f in a row (BENCH_TPUT_N; BENCH_TPUT_RUNS runs)
#   par-4x50     4 workers x 50 of them in parallel (BENCH_PAR_W x BENCH_PAR_N)
#   peak RSS     GNU time's maximum resident set of "run" and of "create" (BENCH_RSS_REPS)
# Beside them, the kernel's own floor: the exec of /bin/true (for --version and state)
# and "unshare" of the five namespaces + chroot + /bin/true (for the run rows).
# The runs of a measure are split into rounds; each round is one hyperfine call with
# every runtime, and the order of the runtimes rotates from round to round, so drift in
# the machine's load hits all of them alike.
#
# cgroups: crun 1.8.1 refuses a hybrid host whose cgroup2 (/sys/fs/cgroup/unified) has
# controllers. When cgroup2 is mounted there and crun fails a probe "run", the whole
# benchmark runs in a private mount namespace (unshare -m --propagation private) where
# /sys/fs/cgroup/unified is unmounted, so every runtime sees the same plain cgroup v1
# host. Nothing outside that namespace changes.
#
# Environment: BENCH_RUNS (runs per measure and runtime, default 30), BENCH_ROUNDS (3),
# BENCH_WARMUP (3, per runtime in the first round), BENCH_CGROUP_VIEW (auto|host|legacy),
# BENCH_OUT (raw results and table; default build/bench).
# Needs root, hyperfine, python3, unshare, a static busybox and containers-common's
# seccomp.json (make deps installs them).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SELF=$REPO/scripts/bench.sh
RUNS=${BENCH_RUNS:-30}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-3}
TPUT_N=${BENCH_TPUT_N:-100} PAR_W=${BENCH_PAR_W:-4} PAR_N=${BENCH_PAR_N:-50}
TPUT_RUNS=${BENCH_TPUT_RUNS:-3} RSS_REPS=${BENCH_RSS_REPS:-10}
VIEW=${BENCH_CGROUP_VIEW:-auto}
OUT=${BENCH_OUT:-$REPO/build/bench}
RUN_TIMEOUT=10
SECCOMP_PROFILE=/usr/share/containers/seccomp.json  # golang-github-containers-common

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root"
for t in hyperfine python3 unshare timeout; do command -v $t >/dev/null || die "needs $t (make deps)"; done
[ -r "$SECCOMP_PROFILE" ] || die "needs $SECCOMP_PROFILE (make deps)"
case $RUNS$ROUNDS$WARMUP$TPUT_N$PAR_W$PAR_N$TPUT_RUNS$RSS_REPS in *[!0-9]*) die "BENCH_* counts must be numbers" ;; esac
if [ "$RUNS" -lt 1 ] || [ "$ROUNDS" -lt 1 ]; then die "BENCH_RUNS and BENCH_ROUNDS must be at least 1"; fi
[ "$ROUNDS" -le "$RUNS" ] || ROUNDS=$RUNS

# ------------------------------------------------------------------ runtimes
if [ $# -gt 0 ]; then SPECS=("$@")
else
  # shellcheck disable=SC2206  # word splitting is the point
  SPECS=(${BENCH_RUNTIMES:-berth=$REPO/target/release/berth crun=crun runc=runc})
fi
LABELS=() BINS=()
for s in "${SPECS[@]}"; do
  label=${s%%=*} bin=${s#*=}
  [ "$label" = "$s" ] && label=$(basename "$s")
  if ! p=$(command -v "$bin"); then note "$label: $bin not found, left out"; continue; fi
  case $p in /*) ;; *) p=$PWD/$p ;; esac
  LABELS+=("$label"); BINS+=("$p")
done
[ ${#LABELS[@]} -ge 1 ] || die "no runtime to benchmark"

# ------------------------------------------------------------------ work dir and bundle
# The outer process owns the work dir; the inner one (in the private mount namespace)
# gets it through BENCH_WORK and only cleans its containers.
cleanup_containers() {
  local i id
  for i in "${!LABELS[@]}"; do
    [ -d "$WORK/root-${LABELS[$i]}" ] || continue
    for id in $("${BINS[$i]}" --root "$WORK/root-${LABELS[$i]}" list -q 2>/dev/null); do
      "${BINS[$i]}" --root "$WORK/root-${LABELS[$i]}" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
}
if [ -n "${BENCH_WORK:-}" ]; then
  WORK=$BENCH_WORK
  trap cleanup_containers EXIT
  trap 'exit 130' INT TERM
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
  trap 'cleanup_containers; rm -rf --one-file-system "$WORK"' EXIT
  trap 'exit 130' INT TERM
  bash "$REPO/scripts/mkbundle.sh" "$WORK/bundle/rootfs"
  # runc's default spec ("runc spec") with no terminal and /bin/true: the same file for all
  cat > "$WORK/bundle/config.json" <<'EOF'
{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": [ "/bin/true" ],
    "env": [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm" ],
    "cwd": "/",
    "capabilities": {
      "bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "ambient": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
    },
    "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "runc",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": [ "nosuid", "noexec", "nodev" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
  ],
  "linux": {
    "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
    "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ],
    "maskedPaths": [ "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                     "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi" ],
    "readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
  }
}
EOF
fi
B=$WORK/bundle
# The same bundle with a memory and a pids limit, as engines set them.
BL=$WORK/bundle-limits
if [ ! -e "$BL/config.json" ]; then
  mkdir -p "$BL"
  python3 - "$B/config.json" "$BL/config.json" "$B/rootfs" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"]["path"] = sys.argv[3]  # runc refuses a symlinked rootfs
r = c["linux"].setdefault("resources", {})
r["memory"] = {"limit": 256 * 1024 * 1024}
r["pids"] = {"limit": 1024}
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
fi
# The same bundle running sleep, for exec to go into.
BX=$WORK/bundle-exec
if [ ! -e "$BX/config.json" ]; then
  mkdir -p "$BX"
  python3 - "$B/config.json" "$BX/config.json" "$B/rootfs" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"]["path"] = sys.argv[3]
c["process"]["args"] = ["sleep", "3600"]
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
fi
# The same bundle with Podman's default seccomp profile, converted to an OCI
# linux.seccomp object the way Podman does it (containers/common pkg/seccomp): the
# archMap entry of the native arch with its subArchitectures, and the syscalls whose
# includes/excludes hold for this container's (bounding) capabilities, arch amd64 and
# the running kernel.
BS=$WORK/bundle-seccomp
if [ ! -e "$BS/config.json" ]; then
  mkdir -p "$BS"
  python3 - "$B/config.json" "$BS/config.json" "$B/rootfs" "$SECCOMP_PROFILE" <<'PY'
import json, os, re, sys
c = json.load(open(sys.argv[1]))
c["root"]["path"] = sys.argv[3]  # runc refuses a symlinked rootfs
p = json.load(open(sys.argv[4]))
arch, scmp_arch = "amd64", "SCMP_ARCH_X86_64"  # Go's GOARCH and libseccomp's name
caps = set(c["process"]["capabilities"]["bounding"])
def kver(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:2])
kernel = kver(os.uname().release)
def holds(call):
    inc, exc = call.get("includes") or {}, call.get("excludes") or {}
    if arch in (exc.get("arches") or []) or caps & set(exc.get("caps") or []):
        return False
    if exc.get("minKernel") and kernel >= kver(exc["minKernel"]):
        return False
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if not set(inc.get("caps") or []) <= caps:
        return False
    if inc.get("minKernel") and kernel < kver(inc["minKernel"]):
        return False
    return True
s = {"defaultAction": p["defaultAction"]}
if p.get("defaultErrnoRet") is not None:
    s["defaultErrnoRet"] = p["defaultErrnoRet"]
s["architectures"] = []
for a in p.get("archMap") or []:
    if a["architecture"] == scmp_arch:
        s["architectures"] = [a["architecture"]] + (a.get("subArchitectures") or [])
s["syscalls"] = []
for call in p.get("syscalls") or []:
    if not holds(call):
        continue
    names = list(call.get("names") or []) + ([call["name"]] if call.get("name") else [])
    if not names:
        continue
    e = {"names": names, "action": call["action"]}
    if call.get("args"):
        e["args"] = call["args"]
    if call.get("errnoRet") is not None:
        e["errnoRet"] = call["errnoRet"]
    s["syscalls"].append(e)
c["linux"]["seccomp"] = s
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
fi

# The same rootfs for an ordinary user: a user namespace mapping the user to root, no
# network namespace (sysfs is then bound from the host), no resources (no cgroup an
# ordinary user could make here). Its state roots are the user's, under $WORK/rl.
RL_USER=${BENCH_ROOTLESS_USER:-berth-rootless}
RL=$WORK/rl
if [ ! -e "$RL/bundle/config.json" ]; then
  if ! id -u "$RL_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/sh "$RL_USER" >/dev/null 2>&1 || note "rootless: useradd $RL_USER failed"
  fi
  if id -u "$RL_USER" >/dev/null 2>&1; then
    mkdir -p "$RL/bundle"
    python3 - "$B/config.json" "$RL/bundle/config.json" "$B/rootfs" "$(id -u "$RL_USER")" "$(id -g "$RL_USER")" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"]["path"] = sys.argv[3]
l = c["linux"]
l["namespaces"] = [n for n in l["namespaces"] if n["type"] != "network"] + [{"type": "user"}]
l["uidMappings"] = [{"containerID": 0, "hostID": int(sys.argv[4]), "size": 1}]
l["gidMappings"] = [{"containerID": 0, "hostID": int(sys.argv[5]), "size": 1}]
l.pop("resources", None)
for m in c["mounts"]:
    if m["destination"] == "/sys":
        m.update(type="none", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
    if m["type"] == "devpts":
        m["options"] = [o for o in m["options"] if o != "gid=5"]
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
    chown -R "$RL_USER:" "$RL"
    chmod 711 "$WORK"
  fi
fi

# ------------------------------------------------------------------ cgroup view
cgroup2_at_unified() {
  [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
    [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]
}
# a foreground "run" of /bin/true with a runtime (index $1) and a private root
probe() {
  local r=$WORK/probe-${LABELS[$1]} rc=0
  timeout -s KILL "$RUN_TIMEOUT" "${BINS[$1]}" --root "$r" run --bundle "$B" "bench-probe-$$" \
    </dev/null >"$WORK/probe-${LABELS[$1]}.log" 2>&1 || rc=$?
  "${BINS[$1]}" --root "$r" delete -f "bench-probe-$$" >/dev/null 2>&1 || true
  return $rc
}
if [ -z "${BENCH_WORK:-}" ]; then
  if [ "$VIEW" = auto ]; then
    VIEW=host
    if cgroup2_at_unified; then
      for i in "${!LABELS[@]}"; do
        if [ "$(basename "${BINS[$i]}")" = crun ] && ! probe "$i"; then
          note "crun fails on this hybrid host ($(tail -1 "$WORK/probe-${LABELS[$i]}.log")): hiding cgroup2"
          VIEW=legacy
        fi
      done
    fi
  fi
  case $VIEW in host|legacy) ;; *) die "BENCH_CGROUP_VIEW must be auto, host or legacy" ;; esac
  if [ "$VIEW" = legacy ]; then
    note "cgroup view: legacy (private mount namespace without /sys/fs/cgroup/unified)"
    args=()
    for i in "${!LABELS[@]}"; do args+=("${LABELS[$i]}=${BINS[$i]}"); done
    rc=0
    BENCH_WORK=$WORK BENCH_CGROUP_VIEW=legacy unshare -m --propagation private bash "$SELF" "${args[@]}" || rc=$?
    exit $rc
  fi
else
  # inside the private mount namespace
  if mountpoint -q /sys/fs/cgroup/unified; then
    umount /sys/fs/cgroup/unified 2>/dev/null || umount -l /sys/fs/cgroup/unified ||
      die "cannot unmount /sys/fs/cgroup/unified in the private namespace"
  fi
fi

# ------------------------------------------------------------------ helpers and check
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.json "$OUT"/table.txt
OK=() RL_OK=()
RL_AS=""
if [ -e "$RL/bundle/config.json" ]; then
  RL_AS="setpriv --reuid=$(id -u "$RL_USER") --regid=$(id -g "$RL_USER") --clear-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR=$RL"
fi
for i in "${!LABELS[@]}"; do
  l=${LABELS[$i]} R="${BINS[$i]} --root $WORK/root-$l" h=$WORK/h/$l id=bench-$l
  mkdir -p "$h"
  cat > "$h/run_delete.sh" <<EOF
rc=0
timeout -s KILL $RUN_TIMEOUT $R run --bundle $B $id-r </dev/null >/dev/null 2>&1 || rc=\$?
$R delete -f $id-r >/dev/null 2>&1
exit \$rc
EOF
  cat > "$h/run_delete_limits.sh" <<EOF
rc=0
timeout -s KILL $RUN_TIMEOUT $R run --bundle $BL $id-l </dev/null >/dev/null 2>&1 || rc=\$?
$R delete -f $id-l >/dev/null 2>&1
exit \$rc
EOF
  cat > "$h/run_delete_seccomp.sh" <<EOF
rc=0
timeout -s KILL $RUN_TIMEOUT $R run --bundle $BS $id-s </dev/null >/dev/null 2>&1 || rc=\$?
$R delete -f $id-s >/dev/null 2>&1
exit \$rc
EOF
  cat > "$h/absent.sh" <<EOF
$R delete -f $id-r >/dev/null 2>&1
$R delete -f $id-l >/dev/null 2>&1
$R delete -f $id-s >/dev/null 2>&1
$R delete -f $id >/dev/null 2>&1
$R delete -f $id-x >/dev/null 2>&1
$R delete -f $id-c >/dev/null 2>&1
exit 0
EOF
  cat > "$h/running.sh" <<EOF
case \$($R state $id-x 2>/dev/null) in *'"running"'*) exit 0 ;; esac
$R delete -f $id-x >/dev/null 2>&1
$R run -d --bundle $BX $id-x </dev/null >/dev/null 2>&1
EOF
  cat > "$h/created.sh" <<EOF
$R delete -f $id >/dev/null 2>&1
$R create --bundle $B $id </dev/null >/dev/null 2>&1
EOF
  cat > "$h/stopped.sh" <<EOF
$R delete -f $id >/dev/null 2>&1
$R create --bundle $B $id </dev/null >/dev/null 2>&1 || exit 1
$R start $id >/dev/null 2>&1 || exit 2
n=0
while [ \$n -lt 1000 ]; do
  case \$($R state $id 2>/dev/null) in *'"stopped"'*) exit 0 ;; esac
  n=\$((n+1))
done
exit 3
EOF
  cat > "$h/csd.sh" <<EOF
$R create --bundle $B $id-c </dev/null >/dev/null 2>&1 || exit 1
$R start $id-c >/dev/null 2>&1 || { $R delete -f $id-c >/dev/null 2>&1; exit 2; }
$R delete -f $id-c >/dev/null 2>&1
EOF
  # usage: tput.sh N TAG: N x create+start+delete -f of distinct ids, in a row
  cat > "$h/tput.sh" <<EOF
k=0 rc=0
while [ \$k -lt \$1 ]; do
  $R create --bundle $B $id-t\$2-\$k </dev/null >/dev/null 2>&1 || rc=1
  $R start $id-t\$2-\$k >/dev/null 2>&1 || rc=1
  $R delete -f $id-t\$2-\$k >/dev/null 2>&1 || rc=1
  k=\$((k+1))
done
exit \$rc
EOF
  # usage: par.sh WORKERS N
  cat > "$h/par.sh" <<EOF
pids="" w=0 rc=0
while [ \$w -lt \$1 ]; do sh $h/tput.sh \$2 p\$w & pids="\$pids \$!"; w=\$((w+1)); done
for p in \$pids; do wait \$p || rc=1; done
exit \$rc
EOF
  RLR="$RL_AS ${BINS[$i]} --root $RL/root-$l"
  cat > "$h/run_delete_rootless.sh" <<EOF
rc=0
timeout -s KILL $RUN_TIMEOUT $RLR run --bundle $RL/bundle $id-u </dev/null >/dev/null 2>&1 || rc=\$?
$RLR delete -f $id-u >/dev/null 2>&1
exit \$rc
EOF
  cat > "$h/absent_rootless.sh" <<EOF
$RLR delete -f $id-u >/dev/null 2>&1
exit 0
EOF
  if [ -n "$RL_AS" ]; then
    if sh "$h/run_delete_rootless.sh"; then RL_OK+=("$i")
    else note "$l: rootless run failed -- left out of run+delete-rootless"; fi
  fi
  # functional check: run, then create / start / (stopped) / delete
  err=""
  if ! probe "$i"; then err="run failed: $(tail -1 "$WORK/probe-$l.log")"
  elif ! sh "$h/stopped.sh"; then err="create/start/state failed"
  elif ! ${BINS[$i]} --root "$WORK/root-$l" delete "$id" >/dev/null 2>&1; then err="delete failed"
  fi
  sh "$h/absent.sh"
  if [ -n "$err" ]; then note "${LABELS[$i]}: $err -- left out"; else OK+=("$i"); fi
done
[ ${#OK[@]} -ge 1 ] || die "no runtime passed the functional check"

# ------------------------------------------------------------------ measuring
# measure NAME VERB PREPARE: VERB is "run" (sh run_delete.sh) or a runtime verb
measure() {
  local name=$1 verb=$2 prep=$3 runs=${4:-$RUNS} rounds=${5:-$ROUNDS} n=${#OK[@]} per r k i l w
  per=$(( (runs + rounds - 1) / rounds ))
  note "$name: ${n} runtimes x $rounds rounds x $per runs"
  for r in $(seq 0 $((rounds - 1))); do
    local -a a=()
    w=0; [ "$r" = 0 ] && [ "$runs" = "$RUNS" ] && w=$WARMUP
    for k in $(seq 0 $((n - 1))); do
      i=${OK[$(( (k + r) % n ))]}; l=${LABELS[$i]}
      a+=(--prepare "sh $WORK/h/$l/$prep.sh" -n "$l")
      case $verb in
        run) a+=("sh $WORK/h/$l/run_delete.sh") ;;
        run-limits) a+=("sh $WORK/h/$l/run_delete_limits.sh") ;;
        run-seccomp) a+=("sh $WORK/h/$l/run_delete_seccomp.sh") ;;
        run-rootless) a+=("sh $WORK/h/$l/run_delete_rootless.sh") ;;
        create) a+=("${BINS[$i]} --root $WORK/root-$l create --bundle $B bench-$l") ;;
        exec) a+=("${BINS[$i]} --root $WORK/root-$l exec bench-$l-x /bin/true") ;;
        version) a+=("${BINS[$i]} --version") ;;
        run-only) a+=("${BINS[$i]} --root $WORK/root-$l run --bundle $B bench-$l-r") ;;
        csd) a+=("sh $WORK/h/$l/csd.sh") ;;
        seq) a+=("sh $WORK/h/$l/tput.sh $TPUT_N s") ;;
        par) a+=("sh $WORK/h/$l/par.sh $PAR_W $PAR_N") ;;
        *) a+=("${BINS[$i]} --root $WORK/root-$l $verb bench-$l") ;;
      esac
    done
    hyperfine -N -i --style none --warmup "$w" --runs "$per" \
      --export-json "$OUT/$name.$r.json" "${a[@]}" >>"$WORK/hyperfine.log" 2>&1 ||
      { note "$name round $r: hyperfine failed:"; tail -5 "$WORK/hyperfine.log" >&2; }
    for i in "${OK[@]}"; do sh "$WORK/h/${LABELS[$i]}/absent.sh"; done
  done
}
measure run+delete run absent
measure run+delete-limits run-limits absent
measure run+delete-seccomp run-seccomp absent
if [ ${#RL_OK[@]} -gt 0 ]; then
  all_ok=("${OK[@]}")
  OK=("${RL_OK[@]}")
  measure run+delete-rootless run-rootless absent_rootless
  OK=("${all_ok[@]}")
fi
measure create create absent
measure start start created
measure delete delete stopped
measure exec exec running
measure version version absent
measure state state created
measure run run-only absent
measure create+start+delete csd absent
measure "seq-$TPUT_N" seq absent "$TPUT_RUNS" "$TPUT_RUNS"
measure "par-${PAR_W}x$PAR_N" par absent "$TPUT_RUNS" "$TPUT_RUNS"

# the kernel's floor, in the same conditions: exec of /bin/true; the five namespaces, a
# chroot into the bundle's rootfs and /bin/true there
note "kernel floor: $ROUNDS rounds"
for r in $(seq 0 $((ROUNDS - 1))); do
  hyperfine -N -i --style none --warmup "$WARMUP" --runs $(( (RUNS + ROUNDS - 1) / ROUNDS )) \
    --export-json "$OUT/floor.$r.json" -n exec /bin/true \
    -n namespaces "unshare -m -u -i -n -p -f --mount-proc chroot $B/rootfs /bin/true" \
    >>"$WORK/hyperfine.log" 2>&1 || note "kernel floor round $r: hyperfine failed"
done

# peak RSS (GNU time's maximum resident set, KiB) of "run" and "create", interleaved
RSS=$OUT/rss.tsv
: > "$RSS"
if [ -x /usr/bin/time ]; then
  note "peak RSS: $RSS_REPS reps"
  for rep in $(seq 1 "$RSS_REPS"); do
    for i in "${OK[@]}"; do
      l=${LABELS[$i]} R="${BINS[$i]} --root $WORK/root-$l"
      /usr/bin/time -f "$l	run	%M" -a -o "$RSS" timeout -s KILL "$RUN_TIMEOUT" $R run --bundle "$B" "bench-$l-m" </dev/null >/dev/null 2>&1 || true
      $R delete -f "bench-$l-m" >/dev/null 2>&1 || true
      /usr/bin/time -f "$l	create	%M" -a -o "$RSS" $R create --bundle "$B" "bench-$l-m" </dev/null >/dev/null 2>&1 || true
      $R delete -f "bench-$l-m" >/dev/null 2>&1 || true
    done
  done
else
  note "no /usr/bin/time: peak RSS left out (make deps)"
fi

# ------------------------------------------------------------------ report
labels=()
for i in "${OK[@]}"; do labels+=("${LABELS[$i]}"); done
{
  echo "# berth benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ): $(uname -r), $(nproc) cpus, cgroup view $VIEW, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for i in "${OK[@]}"; do echo "# ${LABELS[$i]} = ${BINS[$i]}"; done
  echo "# $RUNS runs per measure and runtime in $ROUNDS interleaved rounds (+$WARMUP warmup), hyperfine -N; times are medians"
  python3 - "$OUT" "$TPUT_N" "${PAR_W}x$PAR_N" "${labels[@]}" <<'PY'
import glob, json, os, statistics, sys
out, tput, par, labels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
measures = ["version", "state", "create", "start", "delete", "exec", "run", "run+delete",
            "run+delete-limits", "run+delete-seccomp", "run+delete-rootless",
            "create+start+delete",
            "seq-" + tput, "par-" + par]
med, fails = {}, {}
for m in measures:
    for f in sorted(glob.glob(os.path.join(out, m + ".*.json"))):
        for r in json.load(open(f))["results"]:
            codes = r.get("exit_codes") or [0] * len(r["times"])
            med.setdefault((m, r["command"]), []).extend(t for t, c in zip(r["times"], codes) if c == 0)
            fails[(m, r["command"])] = fails.get((m, r["command"]), 0) + sum(1 for c in codes if c != 0)
def ms(m, l):
    t = med.get((m, l))
    return statistics.median(t) * 1e3 if t else None
base, others = labels[0], labels[1:]
head = ["measure"] + ["%s ms" % l for l in labels] + ["%s/%s" % (base, o) for o in others]
rows = []
for m in measures:
    row = [m]
    for l in labels:
        v = ms(m, l)
        row.append("-" if v is None else "%.2f" % v)
    for o in others:
        a, b = ms(m, base), ms(m, o)
        row.append("%.2f" % (a / b) if a and b else "-")
    rows.append(row)
w = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
print()
for r in [head] + rows:
    print("  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)))
bad = ["%s %s: %d" % (m, l, n) for (m, l), n in sorted(fails.items()) if n]
if bad:
    print("\nfailed runs (left out of the medians): " + ", ".join(bad))
print()
for m in measures:
    times = ", ".join("%s %s" % (l, "-" if ms(m, l) is None else "%.1f ms" % ms(m, l)) for l in labels)
    ratios = ", ".join("%s/%s %s" % (base, o, "%.2f" % (ms(m, base) / ms(m, o)) if ms(m, base) and ms(m, o) else "-")
                       for o in others)
    print("%s: %s%s" % (m, times, "; " + ratios if ratios else ""))
def cost(l):
    a, b = ms("run+delete-seccomp", l), ms("run+delete", l)
    return "-" if a is None or b is None else "%+.1f ms" % (a - b)
print("seccomp cost: " + ", ".join("%s %s" % (l, cost(l)) for l in labels))
floor = {}
for f in sorted(glob.glob(os.path.join(out, "floor.*.json"))):
    for r in json.load(open(f))["results"]:
        floor.setdefault(r["command"], []).extend(r["times"])
def fl(n):
    return statistics.median(floor[n]) * 1e3 if floor.get(n) else None
def beside(n, m):
    f = fl(n)
    if f is None:
        return "-"
    return "%.2f ms (%s)" % (f, ", ".join("%s/floor %.1f" % (l, ms(m, l) / f) for l in labels if ms(m, l)))
print("kernel floor: exec of /bin/true %s beside version; five namespaces + chroot + true %s beside run"
      % (beside("exec", "version"), beside("namespaces", "run")))
rss = {}
path = os.path.join(out, "rss.tsv")
if os.path.exists(path):
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) == 3 and f[2].isdigit():
            rss.setdefault((f[0], f[1]), []).append(int(f[2]))
for op in ("run", "create"):
    vals = {l: statistics.median(rss[(l, op)]) for l in labels if rss.get((l, op))}
    if not vals:
        continue
    line = ", ".join("%s %.0f KiB" % (l, v) for l, v in vals.items())
    if base in vals:
        line += "; " + ", ".join("%s/%s %.2f" % (base, o, vals[base] / vals[o]) for o in others if o in vals)
    print("peak RSS of %s: %s" % (op, line))
PY
} | tee "$OUT/table.txt"
echo "# raw hyperfine results: $OUT" >&2
