#!/usr/bin/env bash
# systemd.sh RUNTIME_PATH - Podman and containerd with their systemd cgroup settings
# driving RUNTIME, on a host with systemd as PID 1 and pure cgroup v2 (scripts/test-systemd.sh
# runs it in a `vm-run --systemd` boot, after tests/systemd.rs).
#
# Podman: containers.conf cgroup_manager = "systemd" (Podman's default under systemd), so
# conmon calls the runtime with --systemd-cgroup and cgroupsPath machine.slice:libpod:ID;
# vfs storage (the VM's / is an overlay). Checks: run --memory 64m sees its limit;
# detached with --memory: the scope is active with MemoryMax, the process is in it; exec;
# stop; rm: scope and cgroup gone; --sdnotify=container in a Type=notify unit (systemd-run):
# active only once the container sent READY=1 through conmon and the runtime.
# containerd: ctr run --runc-systemd-cgroup (what SystemdCgroup = true sets in the runc
# shim's options) --cgroup SLICE:PREFIX:NAME, native snapshotter, a memory limit; exec;
# kill; rm: scope and cgroup gone.
# Then nothing is left: processes, units, cgroups, runtime state, mounts.
#
# One line per check ("ok   ENGINE: CHECK" / "FAIL ENGINE: CHECK (details)"), then a
# libtest-style "test result: ... N passed; M failed" line (test-systemd.sh counts those).
# Needs root, podman, conmon, containerd, ctr, containerd-shim-runc-v2, busybox-static,
# systemctl.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 RUNTIME_PATH" >&2; exit 2; }
RUNTIME=$1
[ -x "$RUNTIME" ] || { echo "engines/systemd: $RUNTIME: not executable" >&2; exit 2; }
RTNAME=$(basename "$RUNTIME")
IMG=localhost/busybox:sdtest
T=$(mktemp -d /tmp/engines-sd.XXXXXX)
chmod 755 "$T"
cd "$T" || exit 2
PASSED=0
FAILED=0
ENG=setup
ok() { echo "ok   $ENG: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $ENG: $1 ($2)"; FAILED=$((FAILED + 1)); }
oneline() { printf '%s' "$*" | tr '\n\t' '| ' | sed 's/  */ /g' | cut -c1-300; }
x() {
  timeout -k 5 "${TMO:-60}" bash -c '"$@"' x "$@" >"$T/x.out" 2>"$T/x.err" </dev/null
  RC=$?
  OUT=$(cat "$T/x.out")
  ERR=$(cat "$T/x.err")
}
got() { echo "exit $RC, stdout '$(oneline "$OUT")', stderr '$(oneline "$ERR")'"; }
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}
show() { systemctl show -p "$2" --value "$1" 2>/dev/null; }
unit_gone() { [ "$(show "$1" LoadState)" = not-found ]; }
cg_of() { awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup" 2>/dev/null; }

# the image: busybox-static with a link per applet
r=$T/image/rootfs
mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,usr/lib,lib,lib64}
cp /bin/busybox "$r/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"
tar --numeric-owner -C "$r" -cf "$T/image/rootfs.tar" .

# ---------------------------------------------------------------------------- Podman
ENG=podman
P=$T/podman
mkdir -p "$P"/{root,runroot,tmp,volumes,networks}
cat >"$P/containers.conf" <<EOF
[containers]
netns = "none"
default_ulimits = []
log_driver = "k8s-file"

[network]
network_config_dir = "$P/networks"

[engine]
cgroup_manager = "systemd"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
volume_path = "$P/volumes"
lock_type = "file"
runtime_supports_json = ["crun", "runc", "$RTNAME"]
EOF
cat >"$P/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$P/runroot"
graphroot = "$P/root"
EOF
export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
pm() { TMPDIR=$P/tmp podman --runtime "$RUNTIME" "$@"; }
export -f pm
export P RUNTIME

x pm import --change 'CMD ["sh"]' "$T/image/rootfs.tar" "$IMG"
if [ $RC != 0 ]; then
  fail "setup" "podman import: $(got)"
else
  x pm run --rm --memory 64m "$IMG" cat /sys/fs/cgroup/memory.max
  if [ $RC = 0 ] && [ "$OUT" = 67108864 ]; then ok "run --rm --memory 64m: memory.max inside is 67108864"
  else fail "run --rm --memory 64m" "expected 67108864, $(got)"; fi

  x pm run -d --name sd1 --memory 64m "$IMG" sleep 1000
  id=$OUT
  pid=$(pm inspect -f '{{.State.Pid}}' sd1 2>/dev/null)
  unit=libpod-$id.scope
  if [ $RC != 0 ] || [ -z "$pid" ] || [ "$pid" = 0 ]; then
    fail "run -d --memory 64m" "$(got)"
  elif [ "$(cg_of "$pid")" != "/machine.slice/$unit" ]; then
    fail "run -d: in machine.slice/$unit" "pid $pid is in '$(cg_of "$pid")'"
  elif [ "$(show "$unit" ActiveState)" != active ] || [ "$(show "$unit" MemoryMax)" != 67108864 ]; then
    fail "run -d: scope active with MemoryMax" "ActiveState=$(show "$unit" ActiveState) MemoryMax=$(show "$unit" MemoryMax)"
  else
    ok "run -d --memory 64m: pid in machine.slice/libpod-ID.scope, active, MemoryMax=67108864"
  fi
  x pm exec sd1 sh -c 'echo exec-ok; cat /proc/1/comm'
  if [ $RC = 0 ] && [ "$OUT" = $'exec-ok\nsleep' ]; then ok "exec"
  else fail "exec" "$(got)"; fi
  x pm stop -t 1 sd1
  st=$(pm inspect -f '{{.State.Status}}' sd1 2>/dev/null)
  if [ $RC = 0 ] && [ "$st" = exited ]; then ok "stop"
  else fail "stop" "status '$st', $(got)"; fi
  x pm rm sd1
  if [ $RC != 0 ]; then
    fail "rm: scope gone" "$(got)"
  elif ! wait_for 10 unit_gone "$unit"; then
    fail "rm: scope gone" "$unit: LoadState=$(show "$unit" LoadState) ActiveState=$(show "$unit" ActiveState)"
  elif [ -e "/sys/fs/cgroup/machine.slice/$unit" ]; then
    fail "rm: scope gone" "cgroup /sys/fs/cgroup/machine.slice/$unit left"
  elif "$RUNTIME" state "$id" >/dev/null 2>&1; then
    fail "rm: scope gone" "$RTNAME state $id still answers"
  else
    ok "rm: scope, cgroup and runtime state gone"
  fi

  # --sdnotify=container in a Type=notify unit: the container's READY=1 (the host's
  # systemd-notify, its libraries bound in) goes through conmon and the runtime, and only
  # then is the unit active.
  ctl=$P/ctl
  mkdir -p "$ctl"
  su=berthsdpm-$$.service
  x systemd-run --unit="$su" --service-type=notify -p NotifyAccess=all -p TimeoutStartSec=120 \
    --no-block -E CONTAINERS_CONF="$CONTAINERS_CONF" -E CONTAINERS_STORAGE_CONF="$CONTAINERS_STORAGE_CONF" \
    -E TMPDIR="$P/tmp" -- "$(command -v podman)" --runtime "$RUNTIME" run --rm --name sdn \
    --sdnotify=container -v /usr/lib:/usr/lib:ro -v /usr/lib:/lib:ro -v /usr/lib64:/lib64:ro \
    -v /usr/bin/systemd-notify:/sdnotify:ro -v "$ctl:/ctl" "$IMG" \
    sh -c 'echo "$NOTIFY_SOCKET" > /ctl/env; while [ ! -e /ctl/go ]; do sleep 0.1; done; /sdnotify --ready --no-block; sleep 1000'
  is_active() { [ "$(show "$su" ActiveState)" = active ]; }
  if [ $RC != 0 ]; then
    fail "--sdnotify=container: active only after READY=1" "systemd-run: $(got)"
  elif ! wait_for 60 test -s "$ctl/env"; then
    fail "--sdnotify=container: active only after READY=1" "the container did not start: $(show "$su" ActiveState)"
  else
    sleep 1
    before=$(show "$su" ActiveState)
    touch "$ctl/go"
    if [ "$before" != activating ]; then
      fail "--sdnotify=container: active only after READY=1" "'$before' before READY=1, expected activating"
    elif ! wait_for 20 is_active; then
      fail "--sdnotify=container: active only after READY=1" "'$(show "$su" ActiveState)' 20 s after READY=1"
    else
      ok "--sdnotify=container in a Type=notify unit: activating, then active after READY=1 (NOTIFY_SOCKET=$(cat "$ctl/env"))"
    fi
  fi
  TMO=60 x pm rm -f -t 0 sdn
  systemctl stop "$su" >/dev/null 2>&1
  systemctl reset-failed "$su" >/dev/null 2>&1
fi
TMO=60 x pm rm -a -f -t 0

# ---------------------------------------------------------------------------- containerd
ENG=containerd
C=$T/ctrd
mkdir -p "$C"/{root,state,opt} "$T/ctr"/{rtroot,fifo}
CT_SOCK=$C/containerd.sock
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CT_SOCK"

[ttrpc]
  address = "$CT_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF
containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
CTRD_PID=$!
ct() { ctr -a "$CT_SOCK" -n sdtest "$@"; }
export -f ct
export CT_SOCK
ctr_up() { kill -0 "$CTRD_PID" 2>/dev/null && ctr -a "$CT_SOCK" version >/dev/null 2>&1; }

# a docker-save style archive for ctr images import
d=$T/image/save
mkdir -p "$d"
cp "$T/image/rootfs.tar" "$d/layer.tar"
diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" >"$d/c.json"
cfg=$(sha256sum "$d/c.json" | cut -d' ' -f1)
mv "$d/c.json" "$d/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfg" "$IMG" >"$d/manifest.json"
tar -C "$d" -cf "$T/image/save.tar" manifest.json "$cfg.json" layer.tar

SD_ID=ctsd$$
if ! wait_for 30 ctr_up; then
  fail "setup" "containerd did not come up: $(oneline "$(tail -n 5 "$C/containerd.log")")"
else
  x ct images import --snapshotter native "$T/image/save.tar"
  if [ $RC != 0 ]; then
    fail "setup" "ctr images import: $(got)"
  else
    x ct run -d --snapshotter native --runc-binary "$RUNTIME" --runc-root "$T/ctr/rtroot" \
      --fifo-dir "$T/ctr/fifo" --runc-systemd-cgroup --cgroup "system.slice:berthctr:$SD_ID" \
      --memory-limit 67108864 "$IMG" "$SD_ID" sleep 1000
    unit=berthctr-$SD_ID.scope
    pid=$(ct tasks ls 2>/dev/null | awk -v id="$SD_ID" '$1 == id {print $2}')
    if [ $RC != 0 ] || [ -z "$pid" ]; then
      fail "run --runc-systemd-cgroup --memory-limit 64M" "$(got)"
    elif [ "$(cg_of "$pid")" != "/system.slice/$unit" ]; then
      fail "run: in system.slice/$unit" "pid $pid is in '$(cg_of "$pid")'"
    elif [ "$(show "$unit" ActiveState)" != active ] || [ "$(show "$unit" MemoryMax)" != 67108864 ]; then
      fail "run: scope active with MemoryMax" "ActiveState=$(show "$unit" ActiveState) MemoryMax=$(show "$unit" MemoryMax)"
    else
      ok "run --runc-systemd-cgroup: pid in system.slice/$unit, active, MemoryMax=67108864"
    fi
    x ct tasks exec --fifo-dir "$T/ctr/fifo" --exec-id e1 "$SD_ID" sh -c 'echo exec-ok; cat /proc/1/comm'
    if [ $RC = 0 ] && [ "$OUT" = $'exec-ok\nsleep' ]; then ok "exec"
    else fail "exec" "$(got)"; fi
    x ct tasks kill -s SIGKILL "$SD_ID"
    stopped() { ct tasks ls 2>/dev/null | awk -v id="$SD_ID" '$1 == id {print $3}' | grep -qx STOPPED; }
    if [ $RC = 0 ] && wait_for 10 stopped; then ok "kill"
    else fail "kill" "$(got)"; fi
    ct tasks delete "$SD_ID" >/dev/null 2>&1
    x ct containers delete "$SD_ID"
    if [ $RC != 0 ]; then
      fail "rm: scope gone" "$(got)"
    elif ! wait_for 10 unit_gone "$unit"; then
      fail "rm: scope gone" "$unit: LoadState=$(show "$unit" LoadState) ActiveState=$(show "$unit" ActiveState)"
    elif [ -e "/sys/fs/cgroup/system.slice/$unit" ]; then
      fail "rm: scope gone" "cgroup left"
    elif [ -n "$(ls -A "$T/ctr/rtroot/sdtest" 2>/dev/null | grep -x "$SD_ID")" ]; then
      fail "rm: scope gone" "runtime state left in $T/ctr/rtroot/sdtest"
    else
      ok "rm: scope, cgroup and runtime state gone"
    fi
  fi
fi

# ---------------------------------------------------------------------------- cleanup
ENG=cleanup
for id in $(ct tasks ls -q 2>/dev/null); do ct tasks delete -f "$id" >/dev/null 2>&1; done
for id in $(ct containers ls -q 2>/dev/null); do ct containers delete "$id" >/dev/null 2>&1; done
kill -TERM "$CTRD_PID" 2>/dev/null
wait "$CTRD_PID" 2>/dev/null
end=$((SECONDS + 10))
# (grep takes the pattern from a file, so that its own command line does not match)
ours() { grep -lsFf <(printf '%s\n' "$T") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3; }
while [ -n "$(ours)" ] && [ $SECONDS -lt $end ]; do sleep 0.2; done
left=""
p=$(ours | tr '\n' ' ')
[ -z "$p" ] || left="$left processes: $p;"
u=$(systemctl list-units --all --plain --no-legend 'libpod-*' 'berthctr-*' 'berthsdpm-*' 2>/dev/null | awk '{print $1}' | tr '\n' ' ')
[ -z "$u" ] || left="$left units: $u;"
cgs=$(find /sys/fs/cgroup -type d \( -name 'libpod-*' -o -name 'berthctr-*' \) 2>/dev/null | tr '\n' ' ')
[ -z "$cgs" ] || left="$left cgroups: $cgs;"
m=$(awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r)
for mp in $m; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null; done
[ -z "$m" ] || left="$left mounts: $(tr '\n' ' ' <<<"$m");"
if [ -z "$left" ]; then ok "nothing left behind (processes, units, cgroups, mounts)"
else fail "nothing left behind" "${left# }"; fi
rm -rf --one-file-system "$T"

echo "engines with systemd (RUNTIME=$RUNTIME): $PASSED passed, $FAILED failed"
if [ $FAILED = 0 ]; then r=ok; else r=FAILED; fi
echo "test result: $r. $PASSED passed; $FAILED failed; 0 ignored (integration/engines/systemd.sh)"
[ $FAILED = 0 ]
