#!/usr/bin/env bash
# test-systemd.sh [RUNTIME] - the systemd cgroup driver (--systemd-cgroup) in a VM booted
# with systemd as PID 1 (../shared/vm/vm-run --systemd, pure cgroup v2), ONE boot for the
# whole suite: spec-tests/tests/systemd.rs (lifecycle with limits, update, pause, exec,
# kill --all, delete, a failed create, nested slices, IO limits on a scratch disk, sd_notify,
# what is left afterwards) and, when
# ENGINES=1 (the default), integration/engines/systemd.sh (Podman with cgroup_manager
# "systemd", containerd with SystemdCgroup) and integration/cri/run.sh (a pod through
# containerd's CRI with SystemdCgroup = true and a kubepods-burstable-podUID.slice parent,
# the shorter flow) in the same boot; then always integration/rootless/systemd.sh (a
# rootless container with --systemd-cgroup in a scope of a user's manager, with a memory
# limit; about a minute).
#
# RUNTIME: argument, else $RUNTIME, else target/release/berth (make test-systemd
# RUNTIME=/usr/sbin/runc runs the same against runc). The test binaries are built here,
# never in the emulated VM. Prints cargo's test output, then
# "systemd (VM): N passed, M failed". Exits non-zero if a check failed or the suite could
# not run; prints why and exits 0 where no VM runner exists. Run as root.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=${1:-${RUNTIME:-$REPO/target/release/berth}}
VM_RUN=${VM_RUN:-$(dirname "$REPO")/shared/vm/vm-run}
VM_TIMEOUT=${VM_TIMEOUT:-900}
ENGINES=${ENGINES:-1}
CARGO=${CARGO:-cargo}

case "$RUNTIME" in
  /*) ;;
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac
[ -x "$RUNTIME" ] || { echo "test-systemd: runtime $RUNTIME not found or not executable (make build?)" >&2; exit 1; }
if [ ! -x "$VM_RUN" ]; then
  echo "systemd (VM): SKIPPED: no VM runner at $VM_RUN"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "test-systemd: run as root" >&2; exit 1; }
case "$REPO/" in
  /tmp/* | /run/*) echo "test-systemd: the VM mounts its own /tmp and /run: use a checkout elsewhere" >&2; exit 1 ;;
esac

build_json=$(mktemp)
log=$(mktemp)
trap 'rm -f "$build_json" "$log"' EXIT
(cd "$REPO" && $CARGO test --release -p spec-tests --no-run --message-format=json --test systemd) >"$build_json"
bin=$(python3 - "$build_json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target") or {}
    if m.get("reason") == "compiler-artifact" and t.get("name") == "systemd" \
            and "test" in t.get("kind", []) and m.get("executable"):
        print(m["executable"])
PY
)
[ -x "$bin" ] || { echo "test-systemd: no test binary for tests/systemd.rs" >&2; exit 1; }
cri_bin=""
if [ "$ENGINES" = 1 ]; then
  (cd "$REPO" && $CARGO build --release -p cri-tests --message-format=json) >"$build_json"
  cri_bin=$(python3 - "$build_json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target") or {}
    if m.get("reason") == "compiler-artifact" and t.get("name") == "cri-tests" and m.get("executable"):
        print(m["executable"])
PY
  )
  [ -x "$cri_bin" ] || { echo "test-systemd: no cri-tests binary" >&2; exit 1; }
fi

# In the guest: the test binary (one thread: the last test checks for leftovers of the
# others), then the engines, then rootless (last: it makes a user and its manager, and
# removes them). Each part prints libtest-style result lines.
# shellcheck disable=SC2016 # expanded by the sh that runs it
runner='cd "$1"; bin=$2; engines=$3; rc=0
echo "     Running systemd ($bin)"
"$bin" --test-threads=1 || rc=1
if [ "$engines" = 1 ]; then
  bash "$4/integration/engines/systemd.sh" "$RUNTIME" || rc=1
  CRI_BIN=$5 CRI_SYSTEMD=1 CRI_SHORT=1 CRI_SNAPSHOTTER=native CRI_LIBTEST=1 \
    bash "$4/integration/cri/run.sh" "$RUNTIME" || rc=1
fi
bash "$4/integration/rootless/systemd.sh" "$RUNTIME" || rc=1
exit $rc'

share=()
case "$REPO/" in /work/*) ;; *) share=(--share "$REPO") ;; esac
start=$(date +%s)
rc=0
echo "test-systemd: running tests/systemd.rs$([ "$ENGINES" = 1 ] && echo ", the engines") and rootless in a VM with systemd as PID 1, RUNTIME=$RUNTIME"
"$VM_RUN" --systemd --disk 64M --timeout "$VM_TIMEOUT" "${share[@]}" -e "RUNTIME=$RUNTIME" -e RUST_BACKTRACE=1 \
  -C "$REPO/spec-tests" -- sh -c "$runner" sh "$REPO/spec-tests" "$bin" "$ENGINES" "$REPO" "$cri_bin" \
  2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))

read -r passed failed results < <(awk '
  /^test result: / && match($0, /[0-9]+ passed; [0-9]+ failed/) {
    split(substr($0, RSTART, RLENGTH), n, /[ ;]+/); p += n[1]; f += n[3]; r++
  }
  END { print p + 0, f + 0, r + 0 }' "$log")
want=2; [ "$ENGINES" = 1 ] && want=4
echo
echo "systemd (VM): $passed passed, $failed failed"
echo "test-systemd: took ${secs}s"
if [ "$rc" != 0 ] || [ "$failed" != 0 ] || [ "$results" != "$want" ]; then
  case "$rc" in
    124) echo "test-systemd: the VM hit its ${VM_TIMEOUT}s timeout" ;;
    125) echo "test-systemd: vm-run failed to boot or run the VM" ;;
  esac
  [ "$results" = "$want" ] || echo "test-systemd: only $results of $want parts reported a result"
  exit $(( rc != 0 ? rc : 1 ))
fi
