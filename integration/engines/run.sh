#!/usr/bin/env bash
# run.sh RUNTIME_PATH [podman|containerd|docker ...] - end-to-end checks of an OCI runtime
# binary driven by real container engines: Podman (conmon), containerd (ctr, runc v2 shim)
# and Docker (dockerd on a private containerd). Default: all three engines.
#
# Everything is private and lives under one `mktemp -d` directory: Podman's storage,
# containers.conf and storage.conf; containerd's root, state and sockets; dockerd's data
# and exec roots. Containers' cgroups go under one cgroup parent named after that
# directory. A locally built busybox image is used (no registry, no network).
#
# The checks, for each engine: run echo hello; exit code propagation; a detached sleep (and
# the runtime's own "state" agrees); exec (output, exit code, with a tty); top/ps; pause and
# unpause (the engine's state and the freezer cgroup); stop (SIGTERM, SIGKILL after 1 s:
# 137); kill; rm (stopped, running by force); an interactive tty run; --memory 64m seen
# inside; logs; nothing of its containers left (engine, runtime state, cgroups). Then:
# nothing left behind once all is cleaned up.
#
# Podman calls the runtime without --root (conmon's delete has no global flags): its
# containers' state is in the runtime's default root (/run/berth, /run/runc).
#
# Each check prints one line, "ok   ENGINE: CHECK" or "FAIL ENGINE: CHECK (details)",
# then a totals line per engine and one overall; exits non-zero if any check failed.
# Cleanup (trap, also on failure or ^C) stops the daemons, removes the containers,
# their cgroups and mounts and the directory, and checks that nothing is left behind.
#
# ENGINES_LOGS=DIR keeps the daemons' logs (containerd, dockerd, podman's events) in DIR.
#
# Needs root and: podman conmon containerd ctr containerd-shim-runc-v2 dockerd
# /usr/bin/docker busybox-static script (make deps installs them).
set -uo pipefail

usage() { echo "usage: $0 RUNTIME_PATH [podman|containerd|docker ...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
RUNTIME=$1
shift
case "$RUNTIME" in
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" 2>/dev/null && pwd)/$(basename "$RUNTIME") ;;
  *) RUNTIME=$(command -v "$RUNTIME" || echo "$RUNTIME") ;;
esac
[ -f "$RUNTIME" ] && [ -x "$RUNTIME" ] || { echo "engines: runtime $RUNTIME: not an executable file" >&2; exit 2; }
ENGINES=("$@")
[ ${#ENGINES[@]} -gt 0 ] || ENGINES=(podman containerd docker)
for e in "${ENGINES[@]}"; do
  case $e in podman | containerd | docker) ;; *) echo "engines: unknown engine '$e'" >&2; usage ;; esac
done
[ "$(id -u)" = 0 ] || { echo "engines: needs root" >&2; exit 2; }

RTNAME=$(basename "$RUNTIME")
# dockerd reserves "runc" (and io.containerd.*): a runtime binary named so gets another name
case $RTNAME in
  runc | io.containerd.*) DK_RT=testrt ;;
  *) DK_RT=$(printf '%s' "$RTNAME" | tr -c 'A-Za-z0-9_.-' '_') ;;
esac
IMG=localhost/busybox:test
T=$(mktemp -d /tmp/engines.XXXXXX)
chmod 755 "$T"
CG=/$(basename "$T") # cgroup parent of every container (and of conmon)
[ -z "${ENGINES_LOGS:-}" ] || ENGINES_LOGS=$(mkdir -p "$ENGINES_LOGS" && cd "$ENGINES_LOGS" && pwd)
cd "$T" || exit 2 # conmon writes a file "oom" into its working directory on an OOM kill
# What the engines make outside $T, at fixed paths, whatever their configuration: removed
# at the end when it was not there before. TOP:file-or-dir... (removed in that order)
HOST_PATHS=(
  /run/containerd:/run/containerd/s:/run/containerd/fifo   # shim sockets (containerd)
  /run/docker:/run/docker/plugins                          # plugin sockets (dockerd)
  /run/containers:/run/containers/networks                 # netavark's run dir (podman)
  /var/lib/containers:/var/lib/containers/cache/blob-info-cache-v1.boltdb:/var/lib/containers/cache # c/image's cache (podman import)
)
NEW_HOST_PATHS=()
for h in "${HOST_PATHS[@]}"; do [ -e "${h%%:*}" ] || NEW_HOST_PATHS+=("$h"); done
STARTED=$(date +%s%N)
export RUNTIME RTNAME DK_RT IMG T CG

# ---------------------------------------------------------------------------------------
# results

declare -A PASSED FAILED
ENG=setup
ok() {
  echo "ok   $ENG: $1"
  PASSED[$ENG]=$((${PASSED[$ENG]:-0} + 1))
}
fail() {
  echo "FAIL $ENG: $1 ($2)"
  FAILED[$ENG]=$((${FAILED[$ENG]:-0} + 1))
}
# one line, at most 300 characters
oneline() { printf '%s' "$*" | tr '\n\t' '| ' | sed 's/  */ /g' | cut -c1-300; }

# x CMD...: run CMD (a command or one of the functions below) with a timeout (TMO, 30 s)
# and stdin from /dev/null; sets RC, OUT (stdout) and ERR (stderr), \r removed.
x() {
  local t=${TMO:-30}
  timeout -k 5 "$t" bash -c '"$@"' x "$@" >"$T/x.out" 2>"$T/x.err" </dev/null
  RC=$?
  OUT=$(tr -d '\r' <"$T/x.out")
  ERR=$(tr -d '\r' <"$T/x.err")
  [ $RC != 124 ] || ERR="timed out after ${t}s; $ERR"
}
# ends_killed CHECK VERB ID: the engine's VERB (stop, kill) ends container ID, which must
# then be exited with 137 (SIGKILL)
ends_killed() {
  local check=$1 verb=$2 id=$3 code
  x "${E}_$verb" "$id"
  if [ $RC != 0 ]; then
    fail "$check" "$(got)"
  elif ! wait_for 10 status_is "$id" exited; then
    fail "$check" "$verb exited 0 but state is '$(q "${E}_status" "$id")' after 10 s, not exited"
  else
    code=$(q "${E}_exitcode" "$id")
    if [ "$code" = 137 ]; then ok "$check"
    else fail "$check" "exited, but exit code '$code', expected 137"; fi
  fi
}
# what x got, for a FAIL line
got() { echo "got exit $RC, stdout '$(oneline "$OUT")', stderr '$(oneline "$ERR")'"; }
# q CMD...: a quick query (15 s at most), stdout only
q() { timeout -k 2 15 bash -c '"$@"' q "$@" 2>/dev/null </dev/null; }
# wait_for SECONDS CMD...: poll (every 0.1 s) until CMD succeeds
wait_for() {
  local end=$((SECONDS + $1))
  shift
  while :; do
    "$@" && return 0
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}
status_is() { [ "$(q "${E}_status" "$1")" = "$2" ]; }
# script_tty CMDLINE: CMDLINE in a terminal, under script(1). script's input is a FIFO
# opened read-write, so never at its end: at the end of its input script sends the terminal
# an EOF, and podman -it can then end before the container's output is out.
script_tty() { script -qec "$1" /dev/null <>"$T/tty.in"; }
# OUT of "tty; echo ok" in a terminal is exactly "/dev/pts/N" and "ok", less: the echo of
# a NUL or EOF the terminal got ("^@", "^D") and ctr's complaint when its process ended
# before ctr resized its terminal ("resize pty ... cannot resize a stopped container")
tty_clean() { sed 's/\^[@D]//g; /resize pty.*cannot resize a stopped container/d' <<<"$OUT"; }
tty_out_ok() { tty_clean | tr '\n' ' ' | grep -qx '/dev/pts/[0-9][0-9]* ok '; }
# freezer state of a host pid's cgroup: FROZEN, THAWED, FREEZING or "unknown"
freezer_state() {
  local p
  p=$(awk -F: '$2 == "freezer" {print $3}' "/proc/$1/cgroup" 2>/dev/null)
  if [ -n "$p" ] && [ -r "/sys/fs/cgroup/freezer$p/freezer.state" ]; then
    cat "/sys/fs/cgroup/freezer$p/freezer.state"
    return
  fi
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then # pure cgroup v2
    p=$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup" 2>/dev/null)
    if [ -n "$p" ] && [ -r "/sys/fs/cgroup$p/cgroup.freeze" ]; then
      case $(cat "/sys/fs/cgroup$p/cgroup.freeze") in 1) echo FROZEN ;; 0) echo THAWED ;; esac
      return
    fi
  fi
  echo unknown
}
# true also when the state cannot be read (no freezer found): the engine's state decides
freezer_is() { local s; s=$(freezer_state "$1"); [ "$s" = "$2" ] || [ "$s" = unknown ]; }
logs_has_both() { [ "$(q "${E}_logs" "$1" | sort)" = $'line1\nline2' ]; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }

# ---------------------------------------------------------------------------------------
# the image: busybox-static, a symlink per applet, /etc/passwd, /etc/group, /tmp 1777

make_image() {
  local r=$T/image/rootfs a d diff cfg cfgsha arch
  mkdir -p "$r"/{bin,dev,etc,proc,root,sys,tmp,var} || return 1
  cp /bin/busybox "$r/bin/busybox" || return 1
  for a in $(/bin/busybox --list); do
    [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  chmod 1777 "$r/tmp"
  tar --numeric-owner -C "$r" -cf "$T/image/rootfs.tar" . || return 1
  # a docker-save style archive, for ctr images import
  d=$T/image/save
  mkdir -p "$d"
  cp "$T/image/rootfs.tar" "$d/layer.tar"
  diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
  cfg='{"architecture":"'$arch'","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$diff'"]},"history":[{"created_by":"integration/engines/run.sh"}]}'
  printf '%s' "$cfg" >"$d/config.json"
  cfgsha=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/$cfgsha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfgsha" "$IMG" >"$d/manifest.json"
  tar -C "$d" -cf "$T/image/save.tar" manifest.json "$cfgsha.json" layer.tar
}

# ---------------------------------------------------------------------------------------
# engine adapters, one set per engine, prefix E (pm, ct, dk):
#   ${E}_run_rm ID [--mem64] CMD...   run in the foreground, removed after (--mem64: --memory 64m)
#   ${E}_run_d ID CMD...              run detached
#   ${E}_exec ID CMD...               exec into a running container
#   ${E}_top ID                       its processes, one a line, with their command lines
#   ${E}_pause ID, ${E}_unpause ID
#   ${E}_status ID                    running, paused, exited, created or none
#   ${E}_pid ID                       the host pid of its process
#   ${E}_stop ID                      SIGTERM, then SIGKILL after 1 s
#   ${E}_kill ID                      SIGKILL
#   ${E}_exitcode ID                  the exit code of a stopped container
#   ${E}_rm ID..., ${E}_rm_f ID       remove stopped containers; remove a running one
#   ${E}_names                        the names of all its containers
#   ${E}_logs ID                      what the container wrote
#   ${E}_tty_cmd ID CMD...            a shell command line (for script -qec): run -it
#   ${E}_exec_tty_cmd ID CMD...       the same for exec -it
#   ${E}_rtstate ID                   the runtime's own "state" (with the engine's --root)

# Podman
pm() { TMPDIR=$T/podman/tmp podman --runtime "$RUNTIME" "$@"; }
pm_run_rm() {
  local id=$1 o=()
  shift
  [ "$1" != --mem64 ] || { o=(--memory 64m); shift; }
  pm run --rm --name "$id" --cgroup-parent "$CG/podman" "${o[@]}" "$IMG" "$@"
}
pm_run_d() { local id=$1; shift; pm run -d --name "$id" --cgroup-parent "$CG/podman" "$IMG" "$@"; }
pm_exec() { local id=$1; shift; pm exec "$id" "$@"; }
pm_top() { pm top "$1"; }
pm_pause() { pm pause "$1"; }
pm_unpause() { pm unpause "$1"; }
pm_status() { pm inspect -f '{{.State.Status}}' "$1" 2>/dev/null || echo none; }
pm_pid() { pm inspect -f '{{.State.Pid}}' "$1"; }
pm_stop() { pm stop -t 1 "$1"; }
pm_kill() { pm kill "$1"; }
pm_exitcode() { pm inspect -f '{{.State.ExitCode}}' "$1"; }
pm_rm() { pm rm "$@"; }
pm_rm_f() { pm rm -f -t 0 "$1"; }
pm_names() { pm ps -a --format '{{.Names}}'; }
pm_logs() { pm logs "$1" 2>&1; }
pm_exec_tty_cmd() {
  local id=$1
  shift
  printf 'TMPDIR=%q podman --runtime %q exec -it %q' "$T/podman/tmp" "$RUNTIME" "$id"
  printf ' %q' "$@"
}
pm_rtstate() { local id; id=$(pm inspect -f '{{.Id}}' "$1") && "$RUNTIME" state "$id"; }
pm_tty_cmd() {
  local id=$1
  shift
  printf 'TMPDIR=%q podman --runtime %q run -it --rm --name %q --cgroup-parent %q %q' "$T/podman/tmp" "$RUNTIME" "$id" "$CG/podman" "$IMG"
  printf ' %q' "$@"
}

# containerd (ctr)
ct() { ctr -a "$CT_SOCK" -n engines "$@"; }
ct_opts() { # ID
  printf '%s\n' --runc-binary "$RUNTIME" --runc-root "$T/ctr/rtroot" --fifo-dir "$T/ctr/fifo" --cgroup "$CG/ctr/$1"
}
ct_run_rm() {
  local id=$1 o=()
  shift
  # ctr's default spec has no /sys/fs/cgroup mount (Podman's and Docker's have one)
  # shellcheck disable=SC2054 # the commas are ctr's
  [ "$1" != --mem64 ] || { o=(--memory-limit 67108864 --mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev); shift; }
  mapfile -t -O ${#o[@]} o < <(ct_opts "$id")
  ct run --rm "${o[@]}" "$IMG" "$id" "$@"
}
ct_run_d() {
  local id=$1 o
  shift
  mapfile -t o < <(ct_opts "$id")
  ct run -d --log-uri "file://$T/ctr/logs/$id.log" "${o[@]}" "$IMG" "$id" "$@"
}
ct_exec() { local id=$1; shift; ct tasks exec --fifo-dir "$T/ctr/fifo" --exec-id "x$(date +%N)" "$id" "$@"; }
ct_top() {
  local out pid
  out=$(ct tasks ps "$1") || return
  for pid in $(awk 'NR > 1 {print $1}' <<<"$out"); do
    printf '%s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  done
}
ct_pause() { ct tasks pause "$1"; }
ct_unpause() { ct tasks resume "$1"; }
ct_status() {
  local s
  s=$(ct tasks ls | awk -v id="$1" '$1 == id {print $3}')
  case $s in
    RUNNING) echo running ;; PAUSED) echo paused ;; STOPPED) echo exited ;; CREATED) echo created ;;
    "") echo none ;; *) tr 'A-Z' 'a-z' <<<"$s" ;;
  esac
}
ct_pid() { ct tasks ls | awk -v id="$1" '$1 == id {print $2}'; }
ct_kill() { ct tasks kill -s SIGKILL "$1"; }
ct_stop() { # ctr has no stop: what the others do
  local i
  ct tasks kill -s SIGTERM "$1" || return
  for i in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.1
    status_is "$1" exited && return 0
  done
  ct tasks kill -s SIGKILL "$1"
}
# ctr has no exit code query: "tasks delete" warns "task ID exit with non-zero exit code N"
ct_exitcode() {
  local out
  out=$(ct tasks delete "$1" 2>&1) || { echo "tasks delete failed: $out"; return 1; }
  if grep -q 'non-zero exit code [0-9]' <<<"$out"; then
    sed -n 's/.*non-zero exit code \([0-9]*\).*/\1/p' <<<"$out" | head -n 1
  elif [ -z "$out" ]; then
    echo 0
  else
    echo "tasks delete: $out"
  fi
}
ct_rm() {
  local id rc=0
  for id; do
    ct tasks delete "$id" >/dev/null 2>&1
    ct containers delete "$id" || rc=1
  done
  return $rc
}
ct_rm_f() { ct tasks delete -f "$1" >/dev/null; ct containers delete "$1"; }
ct_names() { ct containers ls -q; }
ct_logs() { cat "$T/ctr/logs/$1.log"; }
ct_exec_tty_cmd() {
  local id=$1
  shift
  printf 'ctr -a %q -n engines tasks exec -t --fifo-dir %q --exec-id %q %q' "$CT_SOCK" "$T/ctr/fifo" "t$(date +%N)" "$id"
  printf ' %q' "$@"
}
ct_rtstate() { "$RUNTIME" --root "$T/ctr/rtroot/engines" state "$1"; }
ct_tty_cmd() {
  local id=$1 o
  shift
  mapfile -t o < <(ct_opts "$id")
  printf 'ctr -a %q -n engines run -t --rm' "$CT_SOCK"
  printf ' %q' "${o[@]}" "$IMG" "$id" "$@"
}

# Docker
# (DOCKER_CONFIG only here: podman reads it too, for registry credentials)
dk() { DOCKER_CONFIG=$T/docker/client /usr/bin/docker -H "unix://$DK_SOCK" "$@"; }
dk_run_rm() {
  local id=$1 o=()
  shift
  [ "$1" != --mem64 ] || { o=(--memory 64m); shift; }
  dk run --rm --runtime "$DK_RT" --network none --name "$id" "${o[@]}" "$IMG" "$@"
}
dk_run_d() { local id=$1; shift; dk run -d --runtime "$DK_RT" --network none --name "$id" "$IMG" "$@"; }
dk_exec() { local id=$1; shift; dk exec "$id" "$@"; }
dk_top() { dk top "$1"; }
dk_pause() { dk pause "$1"; }
dk_unpause() { dk unpause "$1"; }
dk_status() { dk inspect -f '{{.State.Status}}' "$1" 2>/dev/null || echo none; }
dk_pid() { dk inspect -f '{{.State.Pid}}' "$1"; }
dk_stop() { dk stop -t 1 "$1"; }
dk_kill() { dk kill "$1"; }
dk_exitcode() { dk inspect -f '{{.State.ExitCode}}' "$1"; }
dk_rm() { dk rm "$@"; }
dk_rm_f() { dk rm -f "$1"; }
dk_names() { dk ps -a --format '{{.Names}}'; }
dk_logs() { dk logs "$1" 2>&1; }
dk_exec_tty_cmd() {
  local id=$1
  shift
  printf 'DOCKER_CONFIG=%q /usr/bin/docker -H %q exec -it %q' "$T/docker/client" "unix://$DK_SOCK" "$id"
  printf ' %q' "$@"
}
dk_rtstate() { local id; id=$(dk inspect -f '{{.Id}}' "$1") && "$RUNTIME" --root "$DK_RTROOT" state "$id"; }
dk_tty_cmd() {
  local id=$1
  shift
  printf 'DOCKER_CONFIG=%q /usr/bin/docker -H %q run -it --rm --runtime %q --network none --name %q %q' "$T/docker/client" "unix://$DK_SOCK" "$DK_RT" "$id" "$IMG"
  printf ' %q' "$@"
}

# ---------------------------------------------------------------------------------------
# the checks, the same for every engine (E: adapter prefix)

suite() {
  local pid s code names n
  local mem='cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'

  x "${E}_run_rm" hello echo hello
  if [ $RC = 0 ] && [ "$OUT" = hello ]; then ok "run echo hello"
  else fail "run echo hello" "expected exit 0 and stdout 'hello', $(got)"; fi

  x "${E}_run_rm" exit3 sh -c 'exit 3'
  if [ $RC = 3 ]; then ok "exit code propagation"
  else fail "exit code propagation" "expected exit 3 from sh -c 'exit 3', $(got)"; fi

  # c1: detached, then exec, top, pause/unpause and stop
  x "${E}_run_d" c1 sleep 1000
  if [ $RC != 0 ]; then
    fail "detached sleep" "run -d: $(got)"
  elif ! wait_for 10 status_is c1 running; then
    fail "detached sleep" "run -d exited 0 but state is '$(q "${E}_status" c1)', not running, after 10 s"
  else
    # and it is the runtime under test that runs it: its "state" agrees
    pid=$(q "${E}_pid" c1)
    x "${E}_rtstate" c1
    s=$(python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["status"], d["pid"])' <<<"$OUT" 2>/dev/null)
    if [ "$(comm_of "$pid")" != sleep ]; then
      fail "detached sleep" "running, but host pid '$pid' is '$(comm_of "$pid")', not sleep"
    elif [ "$s" != "running $pid" ]; then
      fail "detached sleep" "running as pid $pid, but '$RTNAME state' says '$s' (expected 'running $pid'): $(got)"
    else
      ok "detached sleep (pid $pid, '$RTNAME state' agrees)"
    fi
  fi

  x "${E}_exec" c1 sh -c 'echo exec-ok; cat /proc/1/comm'
  if [ $RC = 0 ] && [ "$OUT" = $'exec-ok\nsleep' ]; then ok "exec"
  else fail "exec" "expected exit 0 and stdout 'exec-ok|sleep' (echo, then the container's pid 1), $(got)"; fi

  x "${E}_exec" c1 sh -c 'exit 3'
  if [ $RC = 3 ]; then ok "exec exit code"
  else fail "exec exit code" "expected 3 from exec sh -c 'exit 3', $(got)"; fi

  x script_tty "$("${E}_exec_tty_cmd" c1 sh -c 'tty; echo ok')"
  if [ $RC = 0 ] && tty_out_ok; then
    ok "exec with a tty ($(tty_clean | grep -x '/dev/pts/[0-9]*'))"
  else
    fail "exec with a tty" "expected exit 0 and lines '/dev/pts/N' and 'ok', $(got)"
  fi

  x "${E}_top" c1
  if [ $RC = 0 ] && grep -q 'sleep 1000' <<<"$OUT"; then ok "top/ps lists the sleep"
  else fail "top/ps lists the sleep" "expected exit 0 and a 'sleep 1000' line, $(got)"; fi

  x "${E}_pause" c1
  pid=$(q "${E}_pid" c1)
  if [ $RC != 0 ]; then
    fail "pause" "$(got)"
  elif ! wait_for 5 status_is c1 paused; then
    fail "pause" "pause exited 0 but state is '$(q "${E}_status" c1)', not paused"
  elif ! wait_for 5 freezer_is "$pid" FROZEN; then
    fail "pause" "state paused but the freezer cgroup of pid $pid says $(freezer_state "$pid")"
  else
    ok "pause (state paused, cgroup $(freezer_state "$pid"))"
  fi

  x "${E}_unpause" c1
  if [ $RC != 0 ]; then
    fail "unpause" "$(got)"
  elif ! wait_for 5 status_is c1 running; then
    fail "unpause" "unpause exited 0 but state is '$(q "${E}_status" c1)', not running"
  elif ! wait_for 5 freezer_is "$pid" THAWED; then
    fail "unpause" "state running but the freezer cgroup of pid $pid says $(freezer_state "$pid")"
  else
    ok "unpause (state running, cgroup $(freezer_state "$pid"))"
  fi

  # pid 1 sleep ignores SIGTERM: the engine kills it after its 1 s timeout
  ends_killed "stop (SIGTERM, SIGKILL after 1 s)" stop c1

  x "${E}_run_d" k1 sleep 1000
  if [ $RC != 0 ] || ! wait_for 10 status_is k1 running; then
    fail "kill (SIGKILL, exit code 137)" "could not start container k1: $(got), state '$(q "${E}_status" k1)'"
  else
    ends_killed "kill (SIGKILL, exit code 137)" kill k1
  fi

  # rm: the two stopped containers, and a running one by force
  x "${E}_run_d" r1 sleep 1000
  if [ $RC != 0 ] || ! wait_for 10 status_is r1 running; then
    fail "rm" "could not start container r1: $(got), state '$(q "${E}_status" r1)'"
  else
    x "${E}_rm_f" r1
    if [ $RC != 0 ]; then
      fail "rm" "rm -f of running r1: $(got)"
    else
      x "${E}_rm" c1 k1
      names=$(q "${E}_names")
      n=$(grep -cxE 'c1|k1|r1' <<<"$names")
      if [ $RC != 0 ]; then fail "rm" "rm of stopped c1 k1: $(got)"
      elif [ "$n" != 0 ]; then fail "rm" "rm exited 0 but the engine still lists: $(oneline "$(grep -xE 'c1|k1|r1' <<<"$names")")"
      else ok "rm (stopped, and running by force)"; fi
    fi
  fi

  # an interactive tty run, under script(1) for a real terminal (see script_tty)
  x script_tty "$("${E}_tty_cmd" tty1 sh -c 'tty; echo ok')"
  if [ $RC = 0 ] && tty_out_ok; then
    ok "interactive tty run ($(tty_clean | grep -x '/dev/pts/[0-9]*'))"
  else
    fail "interactive tty run" "expected exit 0 and lines '/dev/pts/N' and 'ok', $(got)"
  fi

  x "${E}_run_rm" mem1 --mem64 sh -c "$mem"
  if [ $RC = 0 ] && [ "$OUT" = 67108864 ]; then ok "memory limit 64m seen inside"
  else fail "memory limit 64m seen inside" "expected 67108864 from the container's memory.limit_in_bytes or memory.max, $(got)"; fi

  if [ "$E" = pm ]; then
    # --read-only: podman mounts /tmp, /run and /var/tmp as tmpfs with runc's "tmpcopyup"
    x pm run --rm --read-only --name ro1 --cgroup-parent "$CG/podman" "$IMG" \
      sh -c 'stat -f -c %T /tmp; echo w > /tmp/f && cat /tmp/f; touch /etc/x 2>/dev/null || echo ro'
    if [ $RC = 0 ] && [ "$OUT" = "$(printf 'tmpfs\nw\nro')" ]; then ok "--read-only (tmpfs with tmpcopyup on a read-only root)"
    else fail "--read-only (tmpfs with tmpcopyup on a read-only root)" "expected tmpfs, w, ro; $(got)"; fi
  fi

  # ctr has no logs verb: the container's output goes to a file (ctr run --log-uri
  # file://), stdout only, as containerd 1.6's shim at times loses stderr there (seen with
  # runc: 3 in 60 runs)
  local logs_cmd='echo line1; echo line2 >&2' logs_check="logs (stdout and stderr)"
  if [ "$E" = ct ]; then
    logs_cmd='echo line1; echo line2'
    logs_check="logs (no ctr logs verb: stdout through run --log-uri file://)"
  fi
  x "${E}_run_d" logs1 sh -c "$logs_cmd"
  if [ $RC != 0 ]; then
    fail "$logs_check" "run -d: $(got)"
  elif ! wait_for 10 status_is logs1 exited; then
    fail "$logs_check" "container did not exit: state '$(q "${E}_status" logs1)'"
  else
    # stdout and stderr are two streams: their order is not kept by every engine
    wait_for 5 logs_has_both logs1
    x "${E}_logs" logs1
    if [ $RC = 0 ] && [ "$(sort <<<"$OUT")" = $'line1\nline2' ]; then ok "$logs_check"
    else fail "$logs_check" "expected exit 0 and lines 'line1' and 'line2', $(got)"; fi
    q "${E}_rm" logs1 >/dev/null
  fi

  leftovers "$E"
}

# nothing of the engine's containers left: engine's list, runtime state, cgroups
leftovers() {
  local names state="" cgs id
  names=$(q "${1}_names")
  # shellcheck disable=SC2010 # the names in a runtime root are container ids
  case $1 in
    pm) # podman calls the runtime without --root: ask about each container it made
      for id in $(pm_ids); do
        q "$RUNTIME" state "$id" >/dev/null && state="$state $id"
      done ;;
    # a container's state in the runtime's root is named by its id (a runtime may keep
    # other things there: berth keeps compiled seccomp filters in ROOT/seccomp)
    ct) state=$(ls "$T/ctr/rtroot/engines" 2>/dev/null | grep -xE 'hello|exit3|c1|k1|r1|tty1|mem1|logs1' | tr '\n' ' ') ;;
    dk) state=$(ls "$DK_RTROOT" 2>/dev/null | grep -xE '[0-9a-f]{64}' | tr '\n' ' ') ;;
  esac
  local sub=${ENG/containerd/ctr}
  cgs=$(find /sys/fs/cgroup/*/"${CG#/}/$sub" /sys/fs/cgroup/"${CG#/}/$sub" -mindepth 1 -type d \
    ! -path '*/conmon' ! -path '*/conmon/*' 2>/dev/null | sed 's|^/sys/fs/cgroup/||' | tr '\n' ' ')
  if [ -z "$names$state$cgs" ]; then ok "no leftover containers, runtime state or cgroups"
  else fail "no leftover containers, runtime state or cgroups" "engine lists '$(oneline "$names")'; runtime state of: '${state# }'; cgroups: '$cgs'"; fi
}

# ---------------------------------------------------------------------------------------
# engines: setup and teardown

hard_limit() { # ulimit flag → the hard limit as a number
  local v
  v=$(ulimit -H "$1")
  [ "$v" = unlimited ] && v=1048576
  echo "$v"
}

podman_setup() {
  local P=$T/podman nofile nproc pidmax
  mkdir -p "$P"/{root,runroot,tmp,volumes,networks}
  nofile=$(hard_limit -n)
  nproc=$(hard_limit -u)
  pidmax=$(cat /proc/sys/kernel/pid_max)
  [ "$nproc" -le "$pidmax" ] || nproc=$pidmax
  cat >"$P/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
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
  cat >"$P/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$P/runroot"
graphroot = "$P/root"
EOF
  export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
  x pm import --change 'CMD ["sh"]' "$T/image/rootfs.tar" "$IMG"
  [ $RC = 0 ] || { SETUP_ERR="podman import: $(got)"; return 1; }
}
# the ids of all containers podman made (its events log)
pm_ids() { grep -o '"ID":"[0-9a-f]\{64\}"' "$T/podman/events.log" 2>/dev/null | cut -d'"' -f4 | sort -u; }
podman_teardown() {
  local id end pids
  [ -n "${CONTAINERS_CONF:-}" ] || return 0
  TMO=60 x pm rm -a -f -t 0
  # a container that podman lost track of: ask the runtime (default root) to delete it
  for id in $(pm_ids); do
    if q "$RUNTIME" state "$id" >/dev/null; then q "$RUNTIME" delete --force "$id"; fi
  done
  # conmon and its exit command (podman container cleanup) finish on their own
  end=$((SECONDS + 10))
  while pids=$(our_pids podman) && [ -n "$pids" ] && [ $SECONDS -lt $end ]; do sleep 0.1; done
}

containerd_start() {
  local C=$T/ctrd
  [ -n "${CT_SOCK:-}" ] && return 0
  mkdir -p "$C"/{root,state,opt}
  CT_SOCK=$C/containerd.sock
  export CT_SOCK
  cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CT_SOCK"

[ttrpc]
  address = "$CT_SOCK.ttrpc"

[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF
  containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
  CTRD_PID=$!
  if ! wait_for 20 ctr_up; then
    SETUP_ERR="containerd did not come up in 20 s: $(oneline "$(tail -n 5 "$C/containerd.log")")"
    return 1
  fi
}
ctr_up() { kill -0 "$CTRD_PID" 2>/dev/null && q ctr -a "$CT_SOCK" version >/dev/null; }

containerd_setup() {
  containerd_start || return 1
  mkdir -p "$T/ctr"/{rtroot,fifo,logs}
  x ct images import "$T/image/save.tar"
  [ $RC = 0 ] || { SETUP_ERR="ctr images import: $(got)"; return 1; }
}
containerd_teardown() {
  local ns id
  [ -n "${CT_SOCK:-}" ] && [ -n "${CTRD_PID:-}" ] || return 0
  for ns in engines moby; do
    for id in $(q ctr -a "$CT_SOCK" -n "$ns" tasks ls -q); do
      q ctr -a "$CT_SOCK" -n "$ns" tasks resume "$id" >/dev/null
      q ctr -a "$CT_SOCK" -n "$ns" tasks delete -f "$id" >/dev/null
    done
    for id in $(q ctr -a "$CT_SOCK" -n "$ns" containers ls -q); do
      q ctr -a "$CT_SOCK" -n "$ns" containers delete "$id" >/dev/null
    done
  done
  stop_pid "$CTRD_PID"
  CTRD_PID=
}

docker_setup() {
  local D=$T/docker
  containerd_start || return 1
  mkdir -p "$D"/{data,exec,client}
  DK_SOCK=$D/docker.sock
  # the --root that dockerd 20.10 has the shim give every runc-v2 runtime, added ones too
  DK_RTROOT=$D/exec/runtime-runc/moby
  export DK_SOCK DK_RTROOT
  printf '{"deprecated-key-path": "%s"}\n' "$D/key.json" >"$D/daemon.json"
  dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" \
    --pidfile "$D/dockerd.pid" -H "unix://$DK_SOCK" --containerd "$CT_SOCK" \
    --iptables=false --ip-masq=false --bridge=none --userland-proxy=false \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$CG/docker" \
    --add-runtime "$DK_RT=$RUNTIME" --log-level warn >"$D/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  if ! wait_for 30 docker_up; then
    SETUP_ERR="dockerd did not come up in 30 s: $(oneline "$(tail -n 5 "$D/dockerd.log")")"
    return 1
  fi
  x dk import --change 'CMD ["sh"]' "$T/image/rootfs.tar" "$IMG"
  [ $RC = 0 ] || { SETUP_ERR="docker import: $(got)"; return 1; }
}
docker_up() { kill -0 "$DOCKERD_PID" 2>/dev/null && q dk version >/dev/null; }
docker_teardown() {
  local ids
  [ -n "${DOCKERD_PID:-}" ] || return 0
  ids=$(q dk ps -aq)
  [ -z "$ids" ] || { q dk unpause $ids; TMO=60 x dk rm -f $ids; }
  stop_pid "$DOCKERD_PID"
  DOCKERD_PID=
}

# stop_pid PID: SIGTERM, then SIGKILL after 15 s
stop_pid() {
  local end=$((SECONDS + 15))
  kill -TERM "$1" 2>/dev/null || return 0
  while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

# our_pids [SUB]: processes of ours (or of one engine: SUB podman, ctr or docker): any
# whose command line names our directory (daemons, shims, conmon, podman's cleanup) or
# that is in our cgroup parent (containers, conmon). (grep takes the pattern from a file,
# so that its own command line does not match.)
our_pids() {
  local sub=${1:-}
  grep -lsFf <(printf '%s\n' "$T/${sub:+$sub/}") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
  find /sys/fs/cgroup/*/"${CG#/}${sub:+/$sub}" /sys/fs/cgroup/"${CG#/}${sub:+/$sub}" \
    -name cgroup.procs -exec cat {} + 2>/dev/null
}
our_mounts() { awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
our_cgroups() { find /sys/fs/cgroup/*/"${CG#/}" /sys/fs/cgroup/"${CG#/}" -depth -type d 2>/dev/null; }

CLEANED=0
cleanup() {
  local i pids m d f left=""
  [ $CLEANED = 1 ] && return 0
  CLEANED=1
  local podman_ids
  podman_ids=$(pm_ids)
  if [ -n "${ENGINES_LOGS:-}" ]; then
    mkdir -p "$ENGINES_LOGS"
    cp "$T/ctrd/containerd.log" "$T/docker/dockerd.log" "$T/podman/events.log" "$ENGINES_LOGS/" 2>/dev/null
  fi
  podman_teardown >/dev/null 2>&1
  docker_teardown >/dev/null 2>&1
  containerd_teardown >/dev/null 2>&1
  # last resort: whatever is still running; frozen cgroups thawed first
  d=/sys/fs/cgroup/freezer/${CG#/}
  [ -d "$d" ] && find "$d" -name freezer.state -exec sh -c 'echo THAWED > "$1"' sh {} \; 2>/dev/null
  for i in 1 2 3 4 5; do
    pids=$(our_pids | sort -u)
    [ -n "$pids" ] || break
    kill -KILL $pids 2>/dev/null
    sleep 0.2
  done
  # a shim killed so leaves its socket in /run/containerd/s: each names it in its bundle
  for f in "$T"/ctrd/state/io.containerd.runtime.v2.task/*/*/address; do
    [ -f "$f" ] || continue
    m=$(sed -n 's|^unix://\(/run/containerd/s/[0-9a-f]*\)$|\1|p' "$f")
    [ -z "$m" ] || [ ! -S "$m" ] || rm -f "$m"
  done
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
  [ ! -e "$T" ] || left="$left directory $T;"
  # Podman's containers live in the runtime's default root
  m=""
  for i in $podman_ids; do q "$RUNTIME" state "$i" >/dev/null && m="$m $i"; done
  [ -z "$m" ] || left="$left $RTNAME state of $(wc -w <<<"$m") of podman's containers in its default root:$m;"
  CLEANUP_LEFT=$left
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup' EXIT

# ---------------------------------------------------------------------------------------

# every function, for x and q (bash -c)
# shellcheck disable=SC2046
export -f $(declare -F | awk '{print $3}')

echo "engines: RUNTIME=$RUNTIME, engines: ${ENGINES[*]}, scratch $T, cgroup parent $CG"
mkfifo "$T/tty.in" # see script_tty
if ! make_image >"$T/image.log" 2>&1; then
  echo "FAIL setup: busybox image ($(oneline "$(cat "$T/image.log")"))"
  exit 1
fi

for ENG in "${ENGINES[@]}"; do
  case $ENG in podman) E=pm ;; containerd) E=ct ;; docker) E=dk ;; esac
  export E ENG
  PASSED[$ENG]=0
  FAILED[$ENG]=0
  SETUP_ERR=
  t0=$SECONDS
  if "${ENG}_setup"; then
    suite
  else
    fail "setup" "$SETUP_ERR; the checks of this engine were not run"
  fi
  echo "$ENG (RUNTIME=$RUNTIME): ${PASSED[$ENG]} passed, ${FAILED[$ENG]} failed ($((SECONDS - t0)) s)"
done

ENG=cleanup
cleanup
if [ -z "$CLEANUP_LEFT" ]; then ok "nothing left behind (processes, mounts, cgroups, $T)"
else fail "nothing left behind" "${CLEANUP_LEFT# }"; fi

passed=0 failed=0
for e in "${!PASSED[@]}"; do passed=$((passed + PASSED[$e])); done
for e in "${!FAILED[@]}"; do failed=$((failed + FAILED[$e])); done
echo "engines (RUNTIME=$RUNTIME): $passed passed, $failed failed in $((($(date +%s%N) - STARTED) / 1000000000)) s"
[ $failed = 0 ]
