#!/usr/bin/env bash
# systemd.sh RUNTIME_PATH - a rootless container in the user's delegated cgroup (issue 15),
# run as root on a host with systemd as PID 1 and pure cgroup v2: the VM of
# `../shared/vm/vm-run --systemd` (scripts/test-systemd.sh runs it there, in the same boot
# as tests/systemd.rs). The runtime is called by an ordinary user with --systemd-cgroup,
# so the container's cgroup is a scope made by the user's own manager (user@UID.service,
# started by `loginctl enable-linger`), reached on the user's D-Bus bus.
#
#  0. spec --rootless: a user namespace; the cgroup mount at /sys/fs/cgroup and a cgroup
#     namespace (each added when missing) so that it shows the container's own cgroup
#  1. run --systemd-cgroup, cgroupsPath user.slice:berth:ID, memory limit 64 MiB: the
#     container reads 67108864 in /sys/fs/cgroup/memory.max, exit 0; the scope is gone after
#  2. create + start (sleep): the scope berth-ID.scope in the user's manager is active with
#     MemoryMax; its cgroup .../user@UID.service/user.slice/berth-ID.scope has memory.max
#     67108864 and holds the init pid; exec joins it (its /proc/self/cgroup is 0::/)
#  3. kill + delete: the scope and its cgroup are gone
#  4. the limit is enforced: busybox dd with a 200 MiB buffer (bs=200M, filled by reading
#     /dev/zero) is OOM-killed, memory.events counts it
#  5. nothing left: no state in $XDG_RUNTIME_DIR/<runtime basename>, no berth-* cgroup, no
#     process of the user besides its manager and bus
#
# The runtime is called from a scope of the user's manager (systemd-run --user --scope), as
# Podman puts itself: a process in root's service (here, the VM's command) is outside the
# user's delegated subtree, and the user cannot move a process from there into it (the
# cgroup.procs of the common ancestor is root's). runc 1.1.5 called from there: run and
# create still work (the init process does get into the scope, moved by systemd), but
# exec's process silently stays in the caller's cgroup, outside the container's limit.
#
# Setup: the user berth-sd (uid 1501 when free) and 65536-id /etc/subuid, /etc/subgid ranges,
# made when missing and left in place; its linger, enabled here and disabled on exit (which
# stops its manager and removes /run/user/UID); the runtime copied to a temp dir the user
# can read; a busybox bundle the user owns.
#
# Each check prints "ok NAME" or "FAIL NAME: why"; then a libtest-style
# "test result: ok|FAILED. N passed; M failed; 0 ignored" line (test-systemd.sh counts
# those) and "rootless (systemd VM): N passed, M failed". Exit status non-zero if M > 0.
#
# Not "set -e": a failing command is a failing check, and the suite goes on.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 RUNTIME_PATH" >&2; exit 2; }
RUNTIME=$1
case "$RUNTIME" in
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" 2>/dev/null && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac
PASSED=0 FAILED=0
ok() { echo "ok $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
note() { echo "  note: $*"; }
finish() {
  echo "test result: $([ "$FAILED" = 0 ] && echo ok || echo FAILED). $PASSED passed; $FAILED failed; 0 ignored (integration/rootless/systemd.sh)"
  echo "rootless (systemd VM): $PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ]
}
# a setup failure before anything was made: one failed check, the result lines
early_fail() { fail setup "$1"; finish; exit 1; }

[ -f "$RUNTIME" ] && [ -x "$RUNTIME" ] || early_fail "runtime $RUNTIME: not an executable file"
[ "$(id -u)" = 0 ] || early_fail "needs root (it makes a user and runs the runtime as that user)"
# the host this is for: systemd as PID 1 (logind, user managers), only cgroup2
[ -d /run/systemd/system ] || early_fail "systemd is not PID 1 here (run it in ../shared/vm/vm-run --systemd)"
[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] ||
  early_fail "/sys/fs/cgroup is not cgroup2 (pure cgroup v2 needed)"
for c in setpriv python3 busybox timeout loginctl systemctl systemd-run newuidmap newgidmap; do
  command -v "$c" >/dev/null || early_fail "$c not found (make deps)"
done

RTNAME=$(basename "$RUNTIME") # runc and berth keep rootless state in $XDG_RUNTIME_DIR/RTNAME
TU=berth-sd # the test user
WANT_UID=1501
UPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LIMIT=67108864
STARTED=$SECONDS

oneline() { printf '%s' "$*" | tr '\n\t' '| ' | sed 's/  */ /g' | cut -c1-400; }
got() { echo "got exit $RC, stdout '$(oneline "$OUT")', stderr '$(oneline "$ERR")'"; }
wait_for() { # wait_for SECONDS CMD...: poll every 0.2 s until CMD succeeds
  local end=$((SECONDS + $1))
  shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done
}

# ---------------------------------------------------------------------------------------
# setup: the user, its subordinate ids, its manager (linger), the bundle

# shellcheck source=integration/rootless/user.sh
. "$(dirname "$0")/user.sh"
test_user "$TU" "$WANT_UID" || early_fail "useradd $TU"

XDG=/run/user/$TUID
BUS=$XDG/bus
USVC=user@$TUID.service
UCG=/sys/fs/cgroup/user.slice/user-$TUID.slice/$USVC # the user manager's delegated cgroup

# processes of the user or of its subordinate ids, but for its manager (with its sd-pam)
# and its bus (session.slice/dbus.service): "pid uid name cgroup", one a line. Zombies are
# left out (they wait for a reaper). Shell builtins only: a process start costs ~25x in
# the emulated VM, and this reads every process
user_procs() {
  local f pid k v name st uid cg
  for f in /proc/[0-9]*/status; do
    pid=${f#/proc/}
    pid=${pid%/status}
    [ "$pid" != $$ ] || continue
    name="" st="" uid="" cg=""
    { while read -r k v _; do
        case $k in Name:) name=$v ;; State:) st=$v ;; Uid:) uid=$v; break ;; esac
      done; } 2>/dev/null <"$f"
    [ -n "$uid" ] && [ "$st" != Z ] || continue
    [ "$uid" = "$TUID" ] || { [ "$uid" -ge "$SUBUID" ] && [ "$uid" -lt $((SUBUID + 65536)) ]; } || continue
    { read -r cg; } 2>/dev/null <"/proc/$pid/cgroup"
    cg=${cg#0::}
    case $cg in */$USVC/init.scope | */$USVC/*/dbus.service) continue ;; esac
    echo "$pid $uid $name $cg"
  done
}
no_user_procs() { [ -z "$(user_procs)" ]; }
kill_user_procs() {
  local i pids
  for i in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(user_procs | cut -d' ' -f1)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.2
  done
}

# as the user, with a clean environment (its runtime dir and bus), from $T, at most TMO
# (120) seconds (emulated VM: each runtime call takes about a second), stdin /dev/null;
# sets RC, OUT and ERR
xu() {
  (cd "$T" && exec timeout -k 5 "${TMO:-120}" setpriv --reuid "$TUID" --regid "$TGID" --init-groups \
    env -i HOME="$TH" USER="$TU" LOGNAME="$TU" PATH="$UPATH" XDG_RUNTIME_DIR="$XDG" \
    DBUS_SESSION_BUS_ADDRESS="unix:path=$BUS" "$@") >"$T/x.out" 2>"$T/x.err" </dev/null
  RC=$?
  OUT=$(cat "$T/x.out")
  ERR=$(cat "$T/x.err")
  [ $RC != 124 ] || ERR="timed out after ${TMO:-120}s; $ERR"
}
# the runtime, as the user, in a scope of the user's manager (see the head comment)
rt() {
  xu systemd-run --user --scope --quiet -- "$RT" "$@"
}
sdu() { xu systemctl --user "$@"; } # the user's manager
# a property of a unit of the user's manager
uprop() { sdu show -p "$2" --value "$1"; [ $RC = 0 ] && echo "$OUT"; }
scope_gone() { # ID: no unit berth-ID.scope in the user's manager, no cgroup
  [ ! -e "$UCG/user.slice/berth-$1.scope" ] && [ "$(uprop "berth-$1.scope" LoadState)" = not-found ]
}
# a field of the runtime's state JSON (a string or a number), without a Python start (slow
# in the emulated VM)
state_field() { sed -n 's/.*"'"$1"'": *"\{0,1\}\([a-z0-9]*\).*/\1/p' <<<"$OUT" | head -1; }
rt_status() { rt state "$1"; [ $RC = 0 ] && state_field status; }
status_is() { [ "$(rt_status "$1")" = "$2" ]; }
state_entries() { ls -A "$XDG/$RTNAME" 2>/dev/null | tr '\n' ' '; }

user_gone() { [ ! -e "/sys/fs/cgroup/user.slice/user-$TUID.slice" ] && [ ! -e "$XDG" ]; }
CLEANED=0 T="" LINGER=0
cleanup() {
  local e
  [ $CLEANED = 1 ] && return 0
  CLEANED=1
  if [ -n "$T" ] && [ -d "$T" ] && [ -S "$BUS" ]; then
    for e in $(ls -A "$XDG/$RTNAME" 2>/dev/null); do
      [ -d "$XDG/$RTNAME/$e" ] && TMO=30 rt --systemd-cgroup delete --force "$e"
    done
  fi
  kill_user_procs
  # no linger, no session: logind stops the user's manager, then user-runtime-dir@UID
  # (/run/user/UID) and the user's slice
  if [ $LINGER = 1 ]; then
    loginctl disable-linger "$TU" 2>/dev/null
    wait_for 60 user_gone || loginctl terminate-user "$TU" 2>/dev/null
    wait_for 30 user_gone
  fi
  [ -z "$T" ] || rm -rf --one-file-system "$T"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup' EXIT
setup_err() { fail setup "$1"; cleanup; finish; exit 1; }

T=$(mktemp -d /tmp/berth-sd-rootless.XXXXXX) || early_fail "mktemp"
chmod 755 "$T"

# the user's manager, for good (linger), with its bus. logind is started by D-Bus activation
LINGER=1
loginctl enable-linger "$TU" || setup_err "loginctl enable-linger $TU"
user_up() { [ -S "$BUS" ] && sdu show -p Version --value && [ -n "$OUT" ]; }
wait_for 120 user_up ||
  setup_err "the manager of $TU did not answer on $BUS in 120 s: $USVC is $(systemctl is-active "$USVC"); $(got); $(oneline "$(systemctl status --no-pager -n 5 "$USVC" 2>&1)")"
note "$USVC up with its bus after $((SECONDS - STARTED)) s (systemd $OUT); delegated controllers: $(cat "$UCG/cgroup.controllers" 2>/dev/null)"

mkdir -p "$T/bin" && cp "$RUNTIME" "$T/bin/$RTNAME" && chmod 755 "$T/bin" "$T/bin/$RTNAME" ||
  setup_err "copy of $RUNTIME"
RT=$T/bin/$RTNAME
B=$T/bundle # the user's bundle
mkdir -p "$B" || setup_err "mkdir $B"
bash "$(dirname "$0")/../../scripts/mkbundle.sh" "$B/rootfs" >"$T/mkbundle.log" 2>&1 ||
  setup_err "mkbundle.sh: $(oneline "$(cat "$T/mkbundle.log")")"
chown -R "$TUID:$TGID" "$B"
echo "setup: RUNTIME=$RUNTIME (copied to $RT), user $TU uid $TUID gid $TGID, subuid $SUBUID, subgid $SUBGID, XDG_RUNTIME_DIR=$XDG, scratch $T"

# ---------------------------------------------------------------------------------------
# 0. spec --rootless, then the config every check starts from

check0() {
  local n="0 spec --rootless"
  (cd "$B" && rm -f config.json)
  xu sh -c "cd '$B' && exec '$RT' spec --rootless"
  if [ $RC != 0 ] || [ ! -f "$B/config.json" ]; then setup_err "$n: no config.json in the bundle; $(got)"; fi
  # one Python run (each costs seconds in the emulated VM): what the spec has, and the
  # config of each container, T/ID.json: a cgroup namespace, so that the cgroup mount shows
  # the container's own cgroup as its root; the cgroup mount when the spec has none; the
  # limit; cgroupsPath user.slice:berth:ID (a slice of the user's manager)
  python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
ns = c["linux"]["namespaces"]
print("user ns mapped:", "user" in [n["type"] for n in ns] and c["linux"]["uidMappings"][0]["hostID"] == int(sys.argv[3]))
cgm = [m for m in c["mounts"] if m["destination"] == "/sys/fs/cgroup"]
print("  note: spec --rootless: namespaces", [n["type"] for n in ns], "mounts at /sys/fs/cgroup", [(m.get("type"), m.get("options")) for m in cgm])
if "cgroup" not in [n["type"] for n in ns]:
    ns.append({"type": "cgroup"})
    print("  note: a cgroup namespace added")
if not cgm:
    c["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    print("  note: the cgroup mount added")
c["process"]["terminal"] = False
c["linux"]["resources"] = {"memory": {"limit": int(sys.argv[4])}}
for id, args in (("sd1", ["cat", "/sys/fs/cgroup/memory.max"]), ("sd2", ["sleep", "100"]),
        ("sd4", ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null; echo dd=$?; grep \"^oom_kill \" /sys/fs/cgroup/memory.events"])):
    c["linux"]["cgroupsPath"] = "user.slice:berth:" + id
    c["process"]["args"] = args
    json.dump(c, open(sys.argv[2] + "/" + id + ".json", "w"), indent=1)' "$B/config.json" "$T" "$TUID" "$LIMIT" >"$T/cfg.out" 2>&1 ||
    setup_err "$n: config.json: $(oneline "$(cat "$T/cfg.out")")"
  if grep -qx 'user ns mapped: True' "$T/cfg.out"; then ok "$n: config.json with a user namespace mapping 0 to uid $TUID"
  else fail "$n" "no user namespace with uid $TUID mapped: $(oneline "$(head -c 300 "$B/config.json")")"; fi
  grep '^  note' "$T/cfg.out"
}
# the config of container ID (made by check0)
config_for() { cp "$T/$1.json" "$B/config.json"; }

# 1. run in the foreground: the limit inside; the scope gone afterwards
check1() {
  local n="1 run --systemd-cgroup (user.slice:berth:sd1)"
  config_for sd1
  rt --systemd-cgroup run --bundle "$B" sd1
  if [ $RC = 0 ] && [ "$OUT" = "$LIMIT" ]; then ok "$n: memory.max inside is $LIMIT, exit 0"
  else fail "$n" "expected $LIMIT and exit 0; $(got)"; fi
  if wait_for 20 scope_gone sd1; then ok "1 after run: berth-sd1.scope and its cgroup are gone"
  else fail "1 after run: berth-sd1.scope and its cgroup are gone" "LoadState '$(uprop berth-sd1.scope LoadState)', cgroup dir: $(ls -d "$UCG/user.slice/berth-sd1.scope" 2>&1)"; fi
  [ ! -e "$XDG/$RTNAME/sd1" ] || TMO=30 rt --systemd-cgroup delete --force sd1
}

# 2. detached: the scope, its cgroup and its limit, seen from outside; exec joins it
check2() {
  local n="2 create + start --systemd-cgroup (user.slice:berth:sd2)" pid cg s procs
  config_for sd2
  rt --systemd-cgroup create --bundle "$B" sd2
  if [ $RC != 0 ]; then fail "$n" "create: $(got)"; return 1; fi
  rt --systemd-cgroup start sd2
  s=$(rt_status sd2)
  if [ "$s" = running ]; then ok "$n: state 'running'"
  else fail "$n" "state '$s', expected 'running'; $(got)"; fi
  rt state sd2
  pid=$(state_field pid)
  cg=$UCG/user.slice/berth-sd2.scope
  procs=$(cat "$cg/cgroup.procs" 2>/dev/null | tr '\n' ' ')
  if [ -d "$cg" ] && [ "$(cat "$cg/memory.max" 2>/dev/null)" = "$LIMIT" ] && grep -qw "$pid" <<<"$procs"; then
    ok "2 the cgroup ${cg#/sys/fs/cgroup} exists, memory.max $LIMIT, holds the init pid $pid"
  else
    fail "2 the cgroup ${cg#/sys/fs/cgroup}" "dir: $([ -d "$cg" ] && echo yes || echo no), memory.max '$(cat "$cg/memory.max" 2>/dev/null)', cgroup.procs '$procs', init pid '$pid' in '$(cat "/proc/$pid/cgroup" 2>/dev/null)'; berth-* under $UCG: $(cd "$UCG" 2>/dev/null && find . -name 'berth-*' | tr '\n' ' ')"
  fi
  s=$(uprop berth-sd2.scope ActiveState)
  if [ "$s" = active ]; then ok "2 systemctl --user: berth-sd2.scope is active"
  else fail "2 systemctl --user: berth-sd2.scope is active" "ActiveState '$s'; $(got)"; fi
  # systemd knows the limit (a property of the unit), so it keeps it when it re-applies
  # the unit's cgroup settings (daemon-reload, set-property)
  s=$(uprop berth-sd2.scope MemoryMax)
  if [ "$s" = "$LIMIT" ]; then ok "2 systemctl --user: berth-sd2.scope has MemoryMax=$LIMIT"
  else fail "2 systemctl --user: berth-sd2.scope has MemoryMax=$LIMIT" "MemoryMax '$s'; $(got)"; fi
  rt --systemd-cgroup exec sd2 sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max'
  if [ $RC = 0 ] && [ "$OUT" = $'0::/\n'"$LIMIT" ]; then ok "2 exec: in the container's cgroup (0::/ in its cgroup namespace, memory.max $LIMIT)"
  else fail "2 exec: in the container's cgroup" "expected '0::/' and $LIMIT; $(got)"; fi
}

# 3. kill + delete: the scope and its cgroup go
check3() {
  local n="3 kill + delete"
  rt --systemd-cgroup kill sd2 KILL
  if [ $RC = 0 ] && wait_for 20 status_is sd2 stopped; then ok "3 kill KILL: state 'stopped'"
  else fail "3 kill KILL" "state '$(rt_status sd2)'; $(got)"; fi
  rt --systemd-cgroup delete sd2
  if [ $RC = 0 ] && [ ! -e "$XDG/$RTNAME/sd2" ]; then ok "3 delete: no state left"
  else fail "3 delete" "state dir: '$(state_entries)'; $(got)"; fi
  if wait_for 20 scope_gone sd2; then ok "$n: berth-sd2.scope and its cgroup are gone"
  else fail "$n: berth-sd2.scope and its cgroup are gone" "LoadState '$(uprop berth-sd2.scope LoadState)', ActiveState '$(uprop berth-sd2.scope ActiveState)', cgroup dir: $(ls -d "$UCG/user.slice/berth-sd2.scope" 2>&1)"; fi
}

# 4. the limit is enforced: dd's 200 MiB buffer does not fit in 64 MiB
check4() {
  local n="4 memory limit enforced (dd bs=200M OOM-killed)"
  config_for sd4
  rt --systemd-cgroup run --bundle "$B" sd4
  if [ $RC = 0 ] && [ "$(head -1 <<<"$OUT")" = dd=137 ] && grep -qx 'oom_kill [1-9][0-9]*' <<<"$OUT"; then
    ok "$n: dd killed (137), memory.events $(tail -1 <<<"$OUT")"
  else fail "$n" "expected dd=137 and oom_kill >= 1; $(got)"; fi
  wait_for 20 scope_gone sd4
  [ ! -e "$XDG/$RTNAME/sd4" ] || TMO=30 rt --systemd-cgroup delete --force sd4
}

# 5. nothing left of the user's containers
check5() {
  local e cgs
  wait_for 20 no_user_procs
  e=$(state_entries)
  cgs=$(cd "$UCG" 2>/dev/null && find . -name 'berth-*' | tr '\n' ' ')
  if no_user_procs && [ -z "$e" ] && [ -z "$cgs" ]; then ok "5 nothing left (entries in $XDG/$RTNAME, berth-* cgroups, processes of the user besides its manager)"
  else fail "5 nothing left" "state dir entries: '$e'; cgroups: '$cgs'; processes: $(user_procs | tr '\n' ';')"; fi
}

# ---------------------------------------------------------------------------------------

check0
check1
check2 && check3 # (no container to kill when create failed)
check4
check5
cleanup
if [ ! -e "$T" ] && user_gone && no_user_procs; then
  ok "cleanup: linger off, the user's manager, slice and $XDG gone, no process, no $T"
else
  fail "cleanup" "$USVC $(systemctl is-active "$USVC" 2>&1); left: $(ls -d "$T" "/sys/fs/cgroup/user.slice/user-$TUID.slice" "$XDG" 2>/dev/null | tr '\n' ' '); processes: $(user_procs | tr '\n' ';')"
fi
note "$((SECONDS - STARTED)) s in all"
finish
