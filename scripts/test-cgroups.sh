#!/usr/bin/env bash
# test-cgroups.sh [RUNTIME] - the cgroup tests of spec-tests (tests/cgroups.rs and
# tests/cgroup_limits.rs) in both cgroup modes, against RUNTIME (argument, else $RUNTIME,
# else target/release/berth):
#
#   1. on this host, when it is not pure cgroup v2 (cgroup v1: legacy or hybrid);
#   2. on cgroup v2: scripts/test-cgroupv2.sh (this host if it is pure v2, else one
#      vm-run boot, else skipped), which also runs tests/vm_security.rs (kernel modules,
#      AppArmor) in that boot.
#
# Ends with "cgroup v1 (host): N passed, M failed", "cgroup v2 (VM): N passed,
# M failed" (or the v2 pass's skip line) and "security in VM (modules, AppArmor): N passed,
# M failed, K skipped". Exits non-zero if either pass failed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=${1:-${RUNTIME:-$REPO/target/release/berth}}
THREADS=${CGROUP_TEST_THREADS:-2}
CARGO=${CARGO:-cargo}
case "$RUNTIME" in
  /*) ;;
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac

v1_log=$(mktemp)
v2_log=$(mktemp)
trap 'rm -f "$v1_log" "$v2_log"' EXIT

v1_rc=0 v1_summary=""
if [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then
  echo "test-cgroups: cgroup v1 pass on this host, RUNTIME=$RUNTIME"
  (cd "$REPO" && RUNTIME=$RUNTIME $CARGO test --release -p spec-tests \
    --test cgroups --test cgroup_limits -- --test-threads="$THREADS") 2>&1 | tee "$v1_log" \
    || v1_rc=${PIPESTATUS[0]}
  read -r passed failed < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$v1_log" \
    | awk '{p += $1; f += $2} END {print p + 0, f + 0}')
  v1_summary="cgroup v1 (host): $passed passed, $failed failed"
  if [ "$failed" != 0 ] && [ "$v1_rc" = 0 ]; then v1_rc=1; fi
fi

echo
v2_rc=0
bash "$REPO/scripts/test-cgroupv2.sh" "$RUNTIME" 2>&1 | tee "$v2_log" || v2_rc=${PIPESTATUS[0]}
v2_summary=$(grep -E '^cgroup v2( \(|:)' "$v2_log" | tail -n 1 || true)
security_summary=$(grep -E '^security (in VM|on host|\(modules)' "$v2_log" | tail -n 1 || true)

echo
[ -z "$v1_summary" ] || echo "$v1_summary"
echo "${v2_summary:-cgroup v2: no result (test-cgroupv2.sh exited $v2_rc)}"
echo "${security_summary:-security (modules, AppArmor): no result (test-cgroupv2.sh exited $v2_rc)}"
[ "$v1_rc" = 0 ] && [ "$v2_rc" = 0 ]
