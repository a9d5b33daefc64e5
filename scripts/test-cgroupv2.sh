#!/usr/bin/env bash
# test-cgroupv2.sh [RUNTIME] - the cgroup tests of spec-tests (tests/cgroups.rs and
# tests/cgroup_limits.rs) on a pure cgroup v2 hierarchy, against RUNTIME (argument, else
# $RUNTIME, else target/release/berth; make test-cgroupv2 RUNTIME=/usr/sbin/runc).
# The same boot also runs tests/vm_security.rs: kernel modules and AppArmor, which the
# VM's kernel has and a build host may lack (there they skip, saying why).
#
#   - on a pure cgroup v2 host: runs them here;
#   - else, where ../shared/vm/vm-run (next to the repo; override with VM_RUN=path)
#     exists: builds the test binaries here and runs them in ONE vm-run boot (a pure v2
#     VM; see ../shared/vm/README.md), VM_TIMEOUT seconds at most (default 1500);
#   - else: prints why it skips and exits 0.
#
# Prints cargo's test output, then "cgroup v2 (VM): N passed, M failed" ("(host)" when
# run here) and "security in VM (modules, AppArmor): N passed, M failed, K skipped" ("on
# host" when run here; skipped tests are not counted as passed). Exits non-zero if a test
# failed or the tests could not run. Run as root.
# CGROUP_TEST_THREADS (default 2) is passed as --test-threads.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=${1:-${RUNTIME:-$REPO/target/release/berth}}
VM_RUN=${VM_RUN:-$(dirname "$REPO")/shared/vm/vm-run}
VM_TIMEOUT=${VM_TIMEOUT:-1500}
THREADS=${CGROUP_TEST_THREADS:-2}
CGROUP_TESTS=(cgroups cgroup_limits)
SECURITY_TESTS=(vm_security)
TESTS=("${CGROUP_TESTS[@]}" "${SECURITY_TESTS[@]}")
CARGO=${CARGO:-cargo}

# The runtime as an absolute path (the tests may run in a VM, with another cwd).
case "$RUNTIME" in
  /*) ;;
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac
if [ ! -x "$RUNTIME" ]; then
  echo "test-cgroupv2: runtime $RUNTIME not found or not executable (make build?)" >&2
  exit 1
fi

if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  where=host
elif [ -x "$VM_RUN" ]; then
  where=VM
else
  echo "cgroup v2: SKIPPED: this host is not pure cgroup v2 and there is no VM runner at $VM_RUN"
  echo "security (modules, AppArmor): SKIPPED: they run in that VM too (no VM runner at $VM_RUN)"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "test-cgroupv2: run as root" >&2; exit 1; }
if [ "$where" = VM ]; then
  # The guest sees the host's / read-only, but /tmp, /run, /dev, /proc, /sys are its own;
  # a repo there (a clean clone under /tmp, say) has its binaries staged below.
  case "$RUNTIME" in
    "$REPO"/*) ;;
    /tmp/* | /run/* | /dev/* | /proc/* | /sys/*)
      echo "test-cgroupv2: the VM can't see $RUNTIME (its /tmp, /run, ... are the guest's own): put the runtime elsewhere" >&2
      exit 1 ;;
  esac
fi

# Build on the host (never in the emulated VM) and find the test binaries.
build_json=$(mktemp)
log=$(mktemp)
stage=""
trap 'rm -f "$build_json" "$log"; [ -z "$stage" ] || rm -rf "$stage"' EXIT
test_args=()
for t in "${TESTS[@]}"; do test_args+=(--test "$t"); done
(cd "$REPO" && $CARGO test --release -p spec-tests --no-run --message-format=json "${test_args[@]}") >"$build_json"
bins=()
for t in "${TESTS[@]}"; do
  bin=$(python3 - "$build_json" "$t" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target") or {}
    if m.get("reason") == "compiler-artifact" and t.get("name") == sys.argv[2] \
            and "test" in t.get("kind", []) and m.get("executable"):
        print(m["executable"])
PY
)
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "test-cgroupv2: no test binary for tests/$t.rs" >&2
    exit 1
  fi
  bins+=("$bin")
done

# What runs (in the VM or here): each binary from the package dir, as cargo test would.
# $1: the spec-tests dir, $2: --test-threads, then the binaries.
# shellcheck disable=SC2016 # expanded by the sh that runs it
runner='cd "$1"; threads=$2; shift 2; rc=0
for b in "$@"; do
  name=$(basename "$b"); echo "     Running ${name%-*} ($b)"
  "$b" --test-threads="$threads" || rc=1
done
exit $rc'

pkgdir=$REPO/spec-tests
if [ "$where" = VM ]; then
  case "$REPO/" in
    /tmp/* | /run/*)
      # The guest mounts its own tmpfs over these, hiding a share there: copy what runs
      # to a place the guest sees through its read-only view of the host's /.
      stage=$(mktemp -d /var/tmp/berth-cgroupv2.XXXXXX)
      cp "$RUNTIME" "$stage/runtime"
      RUNTIME=$stage/runtime
      staged=()
      for b in "${bins[@]}"; do cp "$b" "$stage/"; staged+=("$stage/$(basename "$b")"); done
      bins=("${staged[@]}")
      pkgdir=$stage
      ;;
  esac
fi

start=$(date +%s)
rc=0
if [ "$where" = VM ]; then
  share=()
  case "$REPO/" in /work/* | /tmp/* | /run/*) ;; *) share=(--share "$REPO") ;; esac
  echo "test-cgroupv2: running ${TESTS[*]} in a cgroup v2 VM ($VM_RUN), RUNTIME=$RUNTIME"
  "$VM_RUN" --timeout "$VM_TIMEOUT" "${share[@]}" -e "RUNTIME=$RUNTIME" -e RUST_BACKTRACE=1 \
    -C "$pkgdir" -- sh -c "$runner" sh "$pkgdir" "$THREADS" "${bins[@]}" \
    2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
else
  echo "test-cgroupv2: running ${TESTS[*]} on this pure cgroup v2 host, RUNTIME=$RUNTIME"
  RUNTIME=$RUNTIME sh -c "$runner" sh "$REPO/spec-tests" "$THREADS" "${bins[@]}" \
    2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
fi
secs=$(( $(date +%s) - start ))

# Sum libtest's "test result: ok. 9 passed; 0 failed; ..." lines per group (the runner's
# "Running NAME" line says which binary reports), and count the security tests' "SKIP
# TEST for RUNTIME: why" notices (a skipped test passes for libtest).
read -r passed failed sec_passed sec_failed sec_skipped results < <(
  awk -v sec=" ${SECURITY_TESTS[*]} " '
    /^     Running / { in_sec = index(sec, " " $2 " ") > 0 }
    in_sec && /SKIP [A-Za-z0-9_]+ for / { skipped++ }
    /^test result: / && match($0, /[0-9]+ passed; [0-9]+ failed/) {
      split(substr($0, RSTART, RLENGTH), n, /[ ;]+/)
      if (in_sec) { sp += n[1]; sf += n[3] } else { cp += n[1]; cf += n[3] }
      results++
    }
    END { print cp + 0, cf + 0, (sp > skipped ? sp - skipped : 0), sf + 0, skipped + 0, results + 0 }' "$log")
if [ "$where" = VM ]; then sec_where="in VM"; else sec_where="on host"; fi

echo
echo "cgroup v2 ($where): $passed passed, $failed failed"
echo "security $sec_where (modules, AppArmor): $sec_passed passed, $sec_failed failed, $sec_skipped skipped"
failed=$((failed + sec_failed))
echo "test-cgroupv2: took ${secs}s"
if [ "$rc" != 0 ] || [ "$failed" != 0 ] || [ "$results" != "${#bins[@]}" ]; then
  case "$rc" in
    124) echo "test-cgroupv2: the VM hit its ${VM_TIMEOUT}s timeout" ;;
    125) echo "test-cgroupv2: vm-run failed to boot or run the VM" ;;
  esac
  [ "$results" = "${#bins[@]}" ] || echo "test-cgroupv2: only $results of ${#bins[@]} test binaries reported a result"
  exit $(( rc != 0 ? rc : 1 ))
fi
