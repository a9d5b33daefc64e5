#!/usr/bin/env bash
# test-faults.sh [RUNTIME] - the fault-injection tests (spec-tests/tests/faults.rs) against
# RUNTIME (argument, else $RUNTIME, else target/release/berth): creates SIGKILLed at
# points spread over the whole create then `delete --force`, forced deletes racing creates,
# a fork bomb without a pid namespace ended by `delete --force` and `kill --all`, memory
# limits below init's usage. One test at a time: the fork bomb fills the host's pid space
# with 512 processes and the killed creates' timing should not depend on a neighbour.
#
# Ends with "faults: N passed, M failed", N and M counting injected faults (each test
# prints "fault runs NAME: P passed, F failed"). Exits non-zero if any failed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=${1:-${RUNTIME:-$REPO/target/release/berth}}
CARGO=${CARGO:-cargo}
case "$RUNTIME" in
  /*) ;;
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac

log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
(cd "$REPO" && RUNTIME=$RUNTIME $CARGO test --release -p spec-tests --test faults -- \
  --nocapture --test-threads=1) 2>&1 | tee "$log" || rc=$?

passed=0 failed=0
while read -r p f; do
  passed=$((passed + p)) failed=$((failed + f))
done < <(sed -n 's/.*fault runs [^:]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log")
# A test that panicked before its count line, or a build failure, counts as one failure.
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
echo "faults: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]
