#!/usr/bin/env bash
# run.sh RUNTIME_PATH - rootless checks of an OCI runtime binary (issue 15), run as root:
# the runtime is called by an ordinary user (made here), with a clean environment.
#
#  1. spec --rootless, then with the default state dir (no --root): create, state
#     (created, running), the state dir is $XDG_RUNTIME_DIR/<runtime basename>, exec (uid 0
#     inside), the init process has the user's uid on the host, kill, delete, nothing left
#  2. run in the foreground: exit code and output
#  3. several id ranges (newuidmap/newgidmap): both ranges inside, chown maps to a subuid
#  3b. a sub-id range not granted: refused (berth names linux.uidMappings), nothing left
#  4. a network namespace: only lo inside
#  7. a resource (memory limit) without a cgroup the user can make: create fails, leaves
#     nothing (what the runtime said is printed)
#  8. berth only: XDG_RUNTIME_DIR unset and no --root: an error naming XDG_RUNTIME_DIR
#     (what another runtime did is printed)
#  9. CVE-2023-25809: a cgroup mount asked read-write is read-only, attacked from a
#     cgroup the user owns (control: the user writes it on the host)
# 10. berth only: its binary runs in place when root's and unwritable by the user and its
#     sub-ids (checked), and from a sealed memfd copy when the user's own
#  5. nothing left behind by 1-4, 7, 8, 9, 10
#  6. rootless Podman with the runtime (its storage under the user's home): run, exit
#     code, detached + exec + stop + rm, --read-only, --userns=keep-id, nothing left
#
# Setup (idempotent, reruns work): uidmap installed if missing; the user berth-rootless
# (uid 1500 when free) and a 65536-id /etc/subuid and /etc/subgid range for it, made only
# when missing and left in place; XDG_RUNTIME_DIR=/run/user/UID (0700, the user's; no
# logind here), the runtime copied to a temp dir the user can read, a busybox bundle the
# user owns. On exit (trap) the containers, every process of the user (and of its subuid
# range), Podman's storage, the temp dirs and /run/user/UID are removed.
#
# Each check prints "ok NAME", "FAIL NAME: why" or "skip NAME: why"; the last line is
# "rootless: N passed, M failed"; the exit status is non-zero if M > 0.
#
# Not "set -e": a failing command is a failing check, and the suite goes on.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 RUNTIME_PATH" >&2; exit 2; }
RUNTIME=$1
case "$RUNTIME" in
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" 2>/dev/null && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac
[ -f "$RUNTIME" ] && [ -x "$RUNTIME" ] || { echo "rootless: runtime $RUNTIME: not an executable file" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "rootless: needs root (it makes a user and runs the runtime as that user)" >&2; exit 2; }

# one run at a time: two would share the user, its XDG_RUNTIME_DIR and its processes (the
# lock is on this script, so that no lock file is left behind)
exec 9<"$0"
flock -w 300 9 || { echo "rootless: another run still holds the lock after 300 s" >&2; exit 2; }

RTNAME=$(basename "$RUNTIME") # runc and berth keep rootless state in $XDG_RUNTIME_DIR/RTNAME
IS_BERTH=0
"$RUNTIME" --version 2>/dev/null | head -1 | grep -qi berth && IS_BERTH=1
TU=berth-rootless # the test user
WANT_UID=1500
IMG=localhost/busybox:rootless
UPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STARTED=$SECONDS

PASSED=0 FAILED=0
ok() { echo "ok $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
skip() { echo "skip $1: $2"; }
note() { echo "  note: $*"; }
# one line, at most 400 characters
oneline() { printf '%s' "$*" | tr '\n\t' '| ' | sed 's/  */ /g' | cut -c1-400; }
got() { echo "got exit $RC, stdout '$(oneline "$OUT")', stderr '$(oneline "$ERR")'"; }
finish() { echo "rootless: $PASSED passed, $FAILED failed"; [ "$FAILED" = 0 ]; }

# ---------------------------------------------------------------------------------------
# setup: uidmap, the user and its subordinate ids, XDG_RUNTIME_DIR, temp dirs

setup_err() { fail setup "$1"; cleanup; finish; exit 1; }
CLEANED=0 T="" P="" XDG="" MADE_RUN_USER=0 TH="" HOME_BEFORE=""

# the script may be run alone, without make deps
if ! command -v newuidmap >/dev/null || ! command -v newgidmap >/dev/null; then
  echo "setup: installing uidmap (newuidmap, newgidmap)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends uidmap >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends uidmap >/dev/null; }; } ||
    { echo "FAIL setup: apt-get install uidmap failed"; echo "rootless: 0 passed, 1 failed"; exit 1; }
fi
for c in setpriv python3 busybox podman timeout; do
  command -v "$c" >/dev/null || { echo "FAIL setup: $c not found (make deps)"; echo "rootless: 0 passed, 1 failed"; exit 1; }
done

# shellcheck source=integration/rootless/user.sh
. "$(dirname "$0")/user.sh"
test_user "$TU" "$WANT_UID" ||
  { echo "FAIL setup: useradd $TU"; echo "rootless: 0 passed, 1 failed"; exit 1; }

# processes of the user or of its subordinate ids: pid, uid, state and name, one a line.
# Zombies are left out: dead already, they wait for the host's pid 1 to reap them (a
# zombie whose parent is alive shows as that parent)
user_procs() {
  local s pid
  for s in /proc/[0-9]*/status; do
    pid=${s#/proc/}
    pid=${pid%/status}
    [ "$pid" != $$ ] || continue
    awk -v u="$TUID" -v s="$SUBUID" -v p="$pid" '
      /^Name:/ {n = $2} /^State:/ {st = $2}
      /^Uid:/ {if (st != "Z" && ($2 == u || ($2 >= s && $2 < s + 65536))) print p, $2, st, n; exit}' "$s" 2>/dev/null
  done
}
user_pids() { user_procs | cut -d' ' -f1; }
# wait_for SECONDS CMD...: poll every 0.1 s until CMD succeeds
wait_for() {
  local end=$((SECONDS + $1))
  shift
  while :; do
    "$@" && return 0
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}
no_user_procs() { [ -z "$(user_procs)" ]; }
# kill, by pid, whatever the user still runs (all of it was started by this script)
kill_user_procs() {
  local i pids
  for i in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(user_pids)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.2
  done
}

# as the user, with a clean environment (no root leftovers), from XCWD (default: $T), at
# most TMO (60) seconds, stdin /dev/null; sets RC, OUT and ERR. NOXDG=1: no
# XDG_RUNTIME_DIR. XENV (an array): more variables.
xu() {
  local t=${TMO:-60} envs=(HOME="$TH" USER="$TU" LOGNAME="$TU" PATH="$UPATH")
  [ -n "${NOXDG:-}" ] || envs+=(XDG_RUNTIME_DIR="$XDG")
  envs+=(${XENV[@]+"${XENV[@]}"})
  # (fd 9, the lock, closed: podman's pause process would keep it after a kill -9 of this)
  (cd "${XCWD:-$T}" && exec 9<&- && exec timeout -k 5 "$t" setpriv --reuid "$TUID" --regid "$TGID" --init-groups \
    env -i "${envs[@]}" "$@") >"$T/x.out" 2>"$T/x.err" </dev/null
  RC=$?
  OUT=$(cat "$T/x.out")
  ERR=$(cat "$T/x.err")
  [ $RC != 124 ] || ERR="timed out after ${t}s; $ERR"
}
rt() { xu "$RT" "$@"; }
# config edits: cfg IN OUT PYTHON (c is the config); json_get PYTHON (d is stdin's JSON)
cfg() {
  python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(c, open(sys.argv[2], "w"), indent=1)' "$@" && chown "$TUID:$TGID" "$2"
}
json_get() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }
rt_status() { rt state "$1"; [ $RC = 0 ] && json_get 'd["status"]' <<<"$OUT"; }
status_is() { [ "$(rt_status "$1")" = "$2" ]; }
# container entries in the user's default state dir ($XDG/RTNAME): ours are named rl-*
# (podman's by their ids, checked apart); a runtime may keep other things there
rl_entries() { ls -A "$XDG/$RTNAME" 2>/dev/null | grep '^rl-' | tr '\n' ' '; }

# ---------------------------------------------------------------------------------------
# cleanup: containers (the runtime's and Podman's), processes, dirs

home_podman_clean() {
  [ -n "$TH" ] && [ -d "$TH" ] || return 0
  rm -rf --one-file-system "$TH/.local/share/containers"
  rmdir "$TH/.local/share" "$TH/.local" 2>/dev/null
}
pm_ids() { grep -o '"ID":"[0-9a-f]\{64\}"' "$P/events.log" 2>/dev/null | cut -d'"' -f4 | sort -u; }
cleanup() {
  local e
  [ $CLEANED = 1 ] && return 0
  CLEANED=1
  [ -n "$T" ] && [ -d "$T" ] || return 0
  if [ -n "$P" ] && [ -f "$P/containers.conf" ]; then TMO=60 pm rm -a -f -t 0; fi
  # whatever is left in the runtime's state dir is ours (the dir was made fresh)
  for e in $(ls -A "$XDG/$RTNAME" 2>/dev/null); do
    [ -d "$XDG/$RTNAME/$e" ] && [ "$e" != seccomp ] && TMO=20 rt delete --force "$e"
  done
  kill_user_procs
  rm -rf --one-file-system "$T"
  [ -z "$P" ] || rm -rf --one-file-system "$P"
  [ -z "$XDG" ] || rm -rf --one-file-system "$XDG"
  [ $MADE_RUN_USER = 0 ] || rmdir /run/user 2>/dev/null
  # what Podman made in the user's home outside $P: c/image's blob cache (import), and
  # whatever else is new there
  home_podman_clean
  if [ -n "$HOME_BEFORE" ] && [ -d "$TH" ]; then
    for e in $(ls -A "$TH"); do
      grep -qxF -- "$e" <<<"$HOME_BEFORE" || rm -rf --one-file-system "${TH:?}/$e"
    done
  fi
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup' EXIT

# leftovers of an earlier run that was killed (kill -9): the user's processes, its temp
# dirs, its podman dirs and podman's image cache in the home (the user is the test's own)
if [ -n "$(user_procs)" ]; then
  echo "setup: processes of $TU from an earlier run, killed: $(user_procs | tr '\n' ';')" >&2
  kill_user_procs
fi
for e in /tmp/berth-rootless.?????? "$TH"/rootless-podman.?????? "$TH/.local/share/containers"; do
  [ -e "$e" ] || continue
  echo "setup: removed $e, left by an earlier run" >&2
  rm -rf --one-file-system "$e"
done
home_podman_clean

T=$(mktemp -d /tmp/berth-rootless.XXXXXX) || { echo "FAIL setup: mktemp"; exit 1; }
chmod 755 "$T"
[ -d /run/user ] || { mkdir -p /run/user && chmod 755 /run/user && MADE_RUN_USER=1; }
XDG=/run/user/$TUID
rm -rf --one-file-system "$XDG" # an earlier run's, if it was killed
mkdir -m 0700 "$XDG" && chown "$TUID:$TGID" "$XDG" || setup_err "mkdir $XDG"
mkdir -p "$T/bin" && cp "$RUNTIME" "$T/bin/$RTNAME" && chmod 755 "$T/bin" "$T/bin/$RTNAME" ||
  setup_err "copy of $RUNTIME"
RT=$T/bin/$RTNAME
B=$T/bundle # the user's bundle
mkdir -p "$B" "$T/shared" || setup_err "mkdir $B"
bash "$(dirname "$0")/../../scripts/mkbundle.sh" "$B/rootfs" >"$T/mkbundle.log" 2>&1 ||
  setup_err "mkbundle.sh: $(oneline "$(cat "$T/mkbundle.log")")"
chown -R "$TUID:$TGID" "$B" "$T/shared"
echo "setup: RUNTIME=$RUNTIME (copied to $RT), user $TU uid $TUID gid $TGID, subuid $SUBUID, subgid $SUBGID, XDG_RUNTIME_DIR=$XDG, scratch $T"

# ---------------------------------------------------------------------------------------
# 1. spec --rootless, the default state dir, create/start/exec/kill/delete

check1() {
  local n="1 spec --rootless" pid uids
  rm -f "$B/config.json"
  XCWD=$B rt spec --rootless
  if [ $RC != 0 ] || [ ! -f "$B/config.json" ]; then fail "$n" "no config.json in the bundle; $(got)"; return; fi
  local has
  has=$(json_get '"user" in [n["type"] for n in d["linux"]["namespaces"]] and d["linux"]["uidMappings"][0]["hostID"] == '"$TUID"' and d["linux"]["gidMappings"][0]["hostID"] == '"$TGID" <"$B/config.json")
  if [ "$has" = True ]; then ok "$n (config.json with a user namespace mapping 0 to uid $TUID, gid $TGID)"
  else fail "$n" "config.json has no user namespace with uid/gid $TUID/$TGID mapped: $(oneline "$(head -c 300 "$B/config.json")")"; fi
  # the base of every other check: no terminal, sleep
  cfg "$B/config.json" "$T/base.json" 'c["process"]["terminal"] = False; c["process"]["args"] = ["sleep", "100"]' ||
    { fail "$n" "config.json is not JSON"; return; }
  cp "$T/base.json" "$B/config.json"

  n="1 create (default state dir, no --root)"
  rt create --bundle "$B" rl-c1
  if [ $RC != 0 ]; then fail "$n" "$(got)"; return; fi
  local s
  s=$(rt_status rl-c1)
  if [ "$s" = created ]; then ok "$n: state 'created'"; else fail "$n" "state '$s', expected 'created'; $(got)"; fi
  n="1 state dir in \$XDG_RUNTIME_DIR/$RTNAME"
  if [ -e "$XDG/$RTNAME/rl-c1" ]; then ok "$n ($XDG/$RTNAME/rl-c1)"
  else fail "$n" "no $XDG/$RTNAME/rl-c1; $XDG has: $(oneline "$(cd "$XDG" && find . -maxdepth 2)")"; fi
  rt start rl-c1
  s=$(rt_status rl-c1)
  if [ "$s" = running ]; then ok "1 start: state 'running'"; else fail "1 start" "state '$s', expected 'running'; $(got)"; fi
  # no cgroup here (v1, not delegated): a limit cannot be set, and update must say so
  # rather than succeed without effect
  rt update --memory 100M rl-c1
  if [ $RC != 0 ] && { [ $IS_BERTH = 0 ] || grep -q 'linux.resources.memory' <<<"$ERR"; }; then
    ok "1 update --memory without a cgroup: refused ($(oneline "$ERR"))"
  elif [ $IS_BERTH = 0 ] && [ $RC = 0 ]; then
    skip "1 update --memory without a cgroup" "runc 1.1.5 is wrong here: exit 0 with no cgroup to limit"
  else fail "1 update --memory without a cgroup" "expected a refusal naming linux.resources.memory; $(got)"; fi
  rt exec rl-c1 id -u
  if [ $RC = 0 ] && [ "$OUT" = 0 ]; then ok "1 exec id -u: 0 inside"; else fail "1 exec id -u" "expected 0; $(got)"; fi
  rt state rl-c1
  pid=$(json_get 'd["pid"]' <<<"$OUT")
  uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status" 2>/dev/null)
  if [ "$uids" = "$TUID $TUID $TUID $TUID" ]; then ok "1 init process (pid $pid) runs as uid $TUID on the host"
  else fail "1 init process runs as the user on the host" "pid '$pid', Uid line '$uids', expected $TUID x4"; fi
  rt kill rl-c1 KILL
  if [ $RC = 0 ] && wait_for 10 status_is rl-c1 stopped; then ok "1 kill: state 'stopped'"
  else fail "1 kill" "state '$(rt_status rl-c1)'; $(got)"; fi
  rt delete rl-c1
  if [ $RC = 0 ] && [ ! -e "$XDG/$RTNAME/rl-c1" ]; then ok "1 delete: state dir entry gone"
  else fail "1 delete" "$(got); $XDG/$RTNAME: $(ls -A "$XDG/$RTNAME" 2>/dev/null | tr '\n' ' ')"; fi
  # the init process is reaped by the host's pid 1: give it a moment
  if wait_for 10 no_user_procs; then ok "1 no process of the user left"
  else fail "1 no process of the user left" "$(user_procs | tr '\n' ';')"; fi
}

# 2. run in the foreground: exit code and output
check2() {
  cfg "$T/base.json" "$B/config.json" 'c["process"]["args"] = ["sh", "-c", "echo out-2; exit 3"]'
  rt run --bundle "$B" rl-r2
  if [ $RC = 3 ] && [ "$OUT" = out-2 ]; then ok "2 run in the foreground: exit code 3 and output 'out-2'"
  else fail "2 run in the foreground" "expected exit 3 and 'out-2'; $(got)"; fi
  if [ ! -e "$XDG/$RTNAME/rl-r2" ]; then ok "2 run: state dir entry gone after the exit"
  else fail "2 run: state dir entry gone after the exit" "$XDG/$RTNAME/rl-r2 is there"; fi
}

# 3. several id ranges: 0 → the user, 1..65536 → its subordinate ids (newuidmap/newgidmap)
check3() {
  local n="3 several id ranges (newuidmap/newgidmap)" want own
  rm -f "$T/shared/f"
  cfg "$T/base.json" "$B/config.json" '
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": '"$TUID"', "size": 1}, {"containerID": 1, "hostID": '"$SUBUID"', "size": 65536}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": '"$TGID"', "size": 1}, {"containerID": 1, "hostID": '"$SUBGID"', "size": 65536}]
for k in ("bounding", "effective", "permitted"):
    c["process"]["capabilities"][k].append("CAP_CHOWN")
c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "'"$T/shared"'", "options": ["rbind", "rw"]})
c["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; touch /mnt/f && chown 1000:1000 /mnt/f && stat -c %u:%g /mnt/f"]'
  rt run --bundle "$B" rl-m3
  want=$(printf '0 %s 1\n1 %s 65536\n--\n0 %s 1\n1 %s 65536\n--\n1000:1000' "$TUID" "$SUBUID" "$TGID" "$SUBGID")
  if [ $RC = 0 ] && [ "$(sed 's/^ *//; s/  */ /g' <<<"$OUT")" = "$want" ]; then ok "$n: uid_map and gid_map inside show both ranges"
  else fail "$n" "expected uid_map/gid_map '$(oneline "$want")'; $(got)"; fi
  own=$(stat -c %u:%g "$T/shared/f" 2>/dev/null)
  if [ "$own" = "$((SUBUID + 999)):$((SUBGID + 999))" ]; then ok "3 chown 1000:1000 inside: owned by $own on the host"
  else fail "3 chown 1000:1000 inside" "host owner '$own', expected $((SUBUID + 999)):$((SUBGID + 999))"; fi
}

# 3b. a range /etc/subuid does not grant the user: refused by newuidmap, the error names
# the field (berth), nothing left
check3b() {
  local n="3b a range not granted in /etc/subuid"
  cfg "$T/base.json" "$B/config.json" '
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": '"$TUID"', "size": 1}, {"containerID": 1, "hostID": '"$((SUBUID + 65536))"', "size": 1000}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": '"$TGID"', "size": 1}, {"containerID": 1, "hostID": '"$SUBGID"', "size": 1000}]'
  rt run --bundle "$B" rl-b3
  if [ $RC != 0 ] && { [ $IS_BERTH = 0 ] || grep -q 'linux.uidMappings' <<<"$ERR"; }; then ok "$n: refused ($(oneline "$ERR"))"
  else fail "$n" "expected a refusal$([ $IS_BERTH = 1 ] && echo " naming linux.uidMappings"); $(got)"; fi
  if [ -z "$(rl_entries)" ] && wait_for 10 no_user_procs; then ok "$n: nothing left"
  else fail "$n: nothing left" "state: '$(rl_entries)'; processes: $(user_procs | tr '\n' ';')"; fi
}

# 4. a network namespace of its own: only lo
check4() {
  cfg "$T/base.json" "$B/config.json" '
c["linux"]["namespaces"].append({"type": "network"})
c["process"]["args"] = ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \""]'
  rt run --bundle "$B" rl-n4
  if [ $RC = 0 ] && [ "$OUT" = lo ]; then ok "4 network namespace: only lo in /proc/net/dev"
  else fail "4 network namespace: only lo in /proc/net/dev" "$(got)"; fi
}

# 7. a memory limit, and no cgroup the user can make: create fails, leaves nothing
check7() {
  local n="7 memory limit without a cgroup the user can make"
  cfg "$T/base.json" "$B/config.json" 'c["linux"]["resources"] = {"memory": {"limit": 67108864}}'
  rt create --bundle "$B" rl-m7
  note "$RTNAME create with linux.resources.memory.limit: exit $RC, stderr: $(oneline "$ERR")"
  if [ $RC != 0 ] && [ $RC != 124 ]; then ok "$n: create fails (exit $RC)"
  else fail "$n" "create should fail; $(got)"; fi
  # berth: the config field by its name
  local want=memory
  [ $IS_BERTH = 0 ] || want=linux.resources.memory
  if grep -qi "$want" <<<"$ERR"; then ok "$n: the error names the memory limit ('$want')"
  else fail "$n: the error names the memory limit" "no '$want' in stderr '$(oneline "$ERR")'"; fi
  [ $RC != 0 ] || TMO=20 rt delete --force rl-m7
  if [ ! -e "$XDG/$RTNAME/rl-m7" ] && wait_for 10 no_user_procs; then ok "$n: nothing left (state dir entry, process)"
  else fail "$n: nothing left" "state dir: $(ls -A "$XDG/$RTNAME" 2>/dev/null | tr '\n' ' '); processes: $(user_procs | tr '\n' ';')"; fi
}

# 8. XDG_RUNTIME_DIR unset and no --root
check8() {
  local n="8 XDG_RUNTIME_DIR unset, no --root"
  cp "$T/base.json" "$B/config.json"
  NOXDG=1 rt create --bundle "$B" rl-x8
  note "$RTNAME create without XDG_RUNTIME_DIR: exit $RC, stderr: $(oneline "$ERR")"
  [ $RC != 0 ] || NOXDG=1 TMO=20 rt delete --force rl-x8
  if [ $IS_BERTH = 0 ]; then
    skip "$n" "berth only: runc 1.1.5 falls back to /run/runc"
    wait_for 10 no_user_procs
    return
  fi
  if [ $RC != 0 ] && [ $RC != 124 ] && grep -q XDG_RUNTIME_DIR <<<"$ERR"; then ok "$n: fails, naming XDG_RUNTIME_DIR"
  else fail "$n" "expected a failure naming XDG_RUNTIME_DIR; $(got)"; fi
  if wait_for 10 no_user_procs; then ok "$n: no process left"
  else fail "$n: no process left" "$(user_procs | tr '\n' ';')"; fi
}

# 5. nothing left behind by the above
check5() {
  local e
  e=$(rl_entries)
  if wait_for 10 no_user_procs && [ -z "$e" ]; then ok "5 nothing left behind (processes of the user, entries in $XDG/$RTNAME)"
  else fail "5 nothing left behind" "processes: $(user_procs | tr '\n' ';'); state dir entries: '$e'"; fi
}

# ---------------------------------------------------------------------------------------
# 6. rootless Podman

PMENV=()
# (--network none besides containers.conf's netns "none": rootless podman would want slirp4netns)
pm_run() { pm run --network none "$@"; }
pm() { local XENV=("${PMENV[@]}"); XCWD=$P xu podman --runtime "$RT" "$@"; }

podman_setup() {
  local driver
  HOME_BEFORE=$(ls -A "$TH")
  P=$(mktemp -d "$TH/rootless-podman.XXXXXX") || return 1
  mkdir -p "$P"/{root,tmp,volumes,networks}
  # No default_ulimits (root's run needs them, as root here lacks CAP_SYS_RESOURCE):
  # rootless podman asks for the caller's own hard limits. No cgroup settings: rootless on
  # cgroup v1, podman gives the runtime no cgroupsPath and no resources by itself.
  cat >"$P/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"

[network]
network_config_dir = "$P/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
volume_path = "$P/volumes"
image_copy_tmp_dir = "$P/tmp"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "$RTNAME"]
EOF
  tar --numeric-owner -C "$B/rootfs" -cf "$P/rootfs.tar" . || return 1
  chown -R "$TUID:$TGID" "$P"
  PMENV=(CONTAINERS_CONF="$P/containers.conf" CONTAINERS_STORAGE_CONF="$P/storage.conf" TMPDIR="$P/tmp")
  # rootless, c/storage ignores graphroot and runroot: rootless_storage_path is the image
  # store, the run root is $XDG_RUNTIME_DIR/containers. Native overlay works in a user
  # namespace on kernel 6.x; vfs if it does not
  for driver in overlay vfs; do
    cat >"$P/storage.conf" <<EOF
[storage]
driver = "$driver"
rootless_storage_path = "$P/root"
EOF
    chown "$TUID:$TGID" "$P/storage.conf"
    pm import --change 'CMD ["sh"]' "$P/rootfs.tar" "$IMG"
    [ $RC != 0 ] || break
    note "podman import with the $driver driver failed: $(got)"
    TMO=30 pm system reset -f
  done
  [ $RC = 0 ] || return 1
  pm info --format '{{.Store.GraphDriverName}} {{.Store.GraphRoot}}'
  case $OUT in
    "$driver $P/root") ok "6 podman: rootless storage under the user's home ($OUT)" ;;
    *) fail "6 podman: rootless storage under the user's home" "expected '$driver $P/root'; $(got)" ;;
  esac
}

check6() {
  local n s id
  if ! podman_setup; then fail "6 podman setup" "$(got)"; return; fi
  pm_run --rm "$IMG" echo hello
  if [ $RC = 0 ] && [ "$OUT" = hello ]; then ok "6 podman run --rm echo hello"
  else fail "6 podman run --rm echo hello" "$(got)"; fi
  pm_run --rm "$IMG" sh -c 'exit 7'
  if [ $RC = 7 ]; then ok "6 podman run: exit code 7"; else fail "6 podman run: exit code 7" "$(got)"; fi

  n="6 podman run -d, exec, stop, rm"
  pm_run -d --name rl-d1 "$IMG" sleep 100
  if [ $RC != 0 ]; then
    fail "$n" "run -d: $(got)"
  else
    id=$OUT
    pm exec rl-d1 sh -c 'echo in; id -u'
    if [ $RC = 0 ] && [ "$OUT" = $'in\n0' ]; then ok "6 podman exec (uid 0 inside)"; else fail "6 podman exec" "expected 'in' and 0; $(got)"; fi
    if [ -e "$XDG/$RTNAME/$id" ]; then ok "6 podman's container state in $XDG/$RTNAME (runtime called inside podman's user namespace)"
    else fail "6 podman's container state in \$XDG_RUNTIME_DIR/$RTNAME" "no $XDG/$RTNAME/$id; $XDG has: $(oneline "$(cd "$XDG" && find . -maxdepth 2 ! -path './containers/*' ! -path './libpod/*')")"; fi
    # sleep as pid 1 ignores SIGTERM: stop ends with SIGKILL after 1 s
    pm stop -t 1 rl-d1
    pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' rl-d1
    s=$OUT
    if [ "$s" = "exited 137" ]; then ok "6 podman stop -t 1: exited 137"; else fail "6 podman stop -t 1" "state '$s', expected 'exited 137'; $(got)"; fi
    pm rm rl-d1
    if [ $RC = 0 ]; then ok "6 podman rm"; else fail "6 podman rm" "$(got)"; fi
  fi

  pm_run --rm --read-only "$IMG" sh -c 'touch /x 2>/dev/null && echo wrote || echo ro; echo w > /tmp/f && cat /tmp/f'
  if [ $RC = 0 ] && [ "$OUT" = $'ro\nw' ]; then ok "6 podman --read-only: / not writable, /tmp is"
  else fail "6 podman --read-only" "expected 'ro' and 'w'; $(got)"; fi
  pm_run --rm --userns=keep-id "$IMG" id -u
  if [ $RC = 0 ] && [ "$OUT" = "$TUID" ]; then ok "6 podman --userns=keep-id: id -u = $TUID"
  else fail "6 podman --userns=keep-id" "expected $TUID; $(got)"; fi

  # nothing of its containers left: podman's list, the runtime's state, processes other
  # than podman's pause process (it holds podman's user namespace until cleanup)
  local names left="" pause
  pm ps -a --format '{{.Names}}'
  names=$OUT
  for id in $(pm_ids); do [ ! -e "$XDG/$RTNAME/$id" ] || left="$left $id"; done
  pause=$(cat "$P/tmp/pause.pid" 2>/dev/null)
  others() { [ -z "$(user_procs | awk -v p="$pause" '$1 != p')" ]; }
  if [ -z "$names$left" ] && wait_for 10 others; then ok "6 podman: no container, runtime state or process left"
  else fail "6 podman: nothing left" "podman lists '$(oneline "$names")'; state of:$left; processes: $(user_procs | awk -v p="$pause" '$1 != p' | tr '\n' ';')"; fi
}

# 9. CVE-2023-25809: a rootless container without a cgroup namespace sees the runtime's own
# cgroups through its cgroup mount. Where the user owns that cgroup (a delegated one), a
# writable mount lets the container rewrite its limits and move processes. The attack: the
# runtime runs in a pids cgroup the user owns, the config asks for a read-write cgroup
# mount, the container writes pids.max. Control: the user itself can write that file on
# the host, so only the read-only mount stops the container.
check9() {
  local n="9 cgroup mount read-only (CVE-2023-25809)" cg=/sys/fs/cgroup/pids/berth-rl-attack-$$ before after
  if [ ! -d /sys/fs/cgroup/pids ] || ! mkdir "$cg" 2>/dev/null; then skip "$n" "no v1 pids hierarchy to delegate here"; return; fi
  chown -R "$TUID:$TGID" "$cg"
  xu sh -c "echo 4242 > $cg/pids.max"
  if [ $RC = 0 ] && [ "$(cat "$cg/pids.max")" = 4242 ]; then ok "$n: control: the user may write $cg/pids.max on the host"
  else fail "$n: control" "the user could not write $cg/pids.max: $(got)"; rmdir "$cg"; return; fi
  cfg "$T/base.json" "$B/config.json" '
for m in c["mounts"]:
    if m["type"] == "cgroup":
        m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
c["process"]["args"] = ["sh", "-c", "echo 7 > /sys/fs/cgroup/pids/pids.max && echo written; grep -w /sys/fs/cgroup/pids /proc/self/mounts | cut -d\" \" -f4 | cut -d, -f1"]'
  before=$(cat "$cg/pids.max")
  xu sh -c "echo \$\$ > $cg/cgroup.procs && exec $RT run --bundle $B rl-g9"
  after=$(cat "$cg/pids.max")
  if [ "$after" = "$before" ] && [ "$(tail -1 <<<"$OUT")" = ro ] && ! grep -q written <<<"$OUT"; then
    ok "$n: the container's write of pids.max failed, the mount is ro, pids.max still $after"
  elif [ $IS_BERTH = 0 ] && grep -q written <<<"$OUT"; then
    # runc 1.1.5 makes the container's cgroup below the user's (so the file watched here
    # stays as it was), binds it read-write, and the container rewrites its own limits
    skip "$n" "runc 1.1.5 is wrong here: the container wrote pids.max through a read-write cgroup mount ($(oneline "$OUT"))"
  else fail "$n" "pids.max $before -> $after; $(got)"; fi
  wait_for 10 no_user_procs
  rmdir "$cg" 2>/dev/null || fail "$n: cleanup" "rmdir $cg failed"
}

# 10. CVE-2019-5736, rootless: an unprivileged berth cannot make a read-only mount of its
# binary, and copies it into a sealed memfd unless no container process could write it:
# the binary is root's and writable by no group or other (the container's processes are
# the user or its sub-ids). (a) root's binary runs in place, and neither the user nor a
# sub-id can write it; (b) the user's own binary (the user could rewrite it) is copied.
check10() {
  local n="10 runtime binary (CVE-2019-5736, rootless)" pid exe own
  if [ $IS_BERTH = 0 ]; then skip "$n" "berth only: how berth decides between its binary and a sealed copy"; return; fi
  cp "$T/base.json" "$B/config.json"
  rt create --bundle "$B" rl-e10
  rt state rl-e10
  pid=$(json_get 'd["pid"]' <<<"$OUT")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
  if [ "$exe" = "$RT" ]; then ok "$n: root's binary ($(stat -c '%U %a' "$RT")) runs in place"
  else fail "$n: root's binary runs in place" "init's exe is '$exe', expected $RT"; fi
  TMO=20 rt delete --force rl-e10
  xu sh -c "echo x >> $RT"
  local sub=$((SUBUID + 999))
  (exec 9<&- && setpriv --reuid "$sub" --regid "$((SUBGID + 999))" --clear-groups sh -c "echo x >> $RT") 2>/dev/null
  local subrc=$?
  if [ $RC != 0 ] && [ $subrc != 0 ] && cmp -s "$RT" "$RUNTIME"; then ok "$n: neither the user nor its sub-id $sub can write it"
  else fail "$n: nobody in reach can write it" "user exit $RC, sub-id exit $subrc, binary changed: $(cmp -s "$RT" "$RUNTIME" && echo no || echo yes)"; fi
  own=$T/own/$RTNAME
  mkdir -p "$T/own" && cp "$RT" "$own" && chown -R "$TUID:$TGID" "$T/own" && chmod 755 "$T/own"
  xu sh -c "test -w $own"
  if [ $RC = 0 ]; then ok "$n: control: the user may write its own copy $own"
  else fail "$n: control" "the user cannot write $own: $(got)"; fi
  xu "$own" create --bundle "$B" rl-e10b
  xu "$own" state rl-e10b
  pid=$(json_get 'd["pid"]' <<<"$OUT")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
  case $exe in
    /memfd:*) ok "$n: the user's own binary is run from a sealed copy ($exe)" ;;
    *) fail "$n: the user's own binary is run from a sealed copy" "init's exe is '$exe'" ;;
  esac
  TMO=20 xu "$own" delete --force rl-e10b
}

# ---------------------------------------------------------------------------------------

check1
check2
check3
check3b
check4
check9
check10
check7
check8
check5
check6
cleanup
if [ -z "$(user_procs)" ] && [ ! -e "$T" ] && [ ! -e "$XDG" ] && [ ! -e "$P" ]; then ok "cleanup: no process of the user, no $T, $XDG, podman dir"
else fail "cleanup" "processes: $(user_procs | tr '\n' ';'); left: $(ls -d "$T" "$XDG" "$P" 2>/dev/null | tr '\n' ' ')"; fi
note "$((SECONDS - STARTED)) s in all"
finish
