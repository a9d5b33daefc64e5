#!/usr/bin/env bash
# mkadvent.sh BUNDLE_DIR [RUNTIME] - make (or refresh) a bundle in BUNDLE_DIR that plays
# Colossal Cave Adventure (Debian's open-adventure, /usr/games/advent): the busybox rootfs
# of mkbundle.sh, plus /usr/games/advent, every library ldd finds for it (the ELF
# interpreter included) at the path ldd names, and the terminfo database; config.json is
# RUNTIME's default spec ("RUNTIME spec": terminal true, TERM=xterm) with args ["./advent"]
# in cwd /usr/games, as "docker run -it open-adventure ./advent" would run it.
# RUNTIME defaults to $RUNTIME, else target/release/berth. Needs open-adventure (make deps).
# Building does not play; scripts/demo.sh plays, integration/terminal/ tests.
set -euo pipefail

case $# in 1 | 2) ;; *) echo "usage: $0 BUNDLE_DIR [RUNTIME]" >&2; exit 2 ;; esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUNDLE=$1
RUNTIME=${2:-${RUNTIME:-$REPO/target/release/berth}}
ADVENT=${ADVENT_BIN:-/usr/games/advent}
ROOTFS=$BUNDLE/rootfs
case "$RUNTIME" in
  */*) RUNTIME=$(cd "$(dirname "$RUNTIME")" && pwd)/$(basename "$RUNTIME") ;;
esac

[ -x "$ADVENT" ] || { echo "$0: $ADVENT not found (apt-get install open-adventure)" >&2; exit 1; }
command -v "$RUNTIME" >/dev/null || { echo "$0: runtime $RUNTIME not found (make build?)" >&2; exit 1; }

mkdir -p "$BUNDLE"
bash "$REPO/scripts/mkbundle.sh" "$ROOTFS"

# copy FILE to the same path in the rootfs, following symlinks (the copy is a plain file)
copy_in() {
  mkdir -p "$ROOTFS$(dirname "$1")"
  install -m 0755 "$(readlink -f "$1")" "$ROOTFS$1"
}

copy_in "$ADVENT"
# ldd's lines: "libx.so.N => /path/libx.so.N (0x...)" for libraries, "/path/ld-linux... (0x...)"
# for the interpreter, "linux-vdso.so.1 (0x...)" (in the kernel, no file) and, for a missing
# library, "libx.so.N => not found"; for a static binary it fails: nothing to copy
libs=$(ldd "$ADVENT" 2>/dev/null) || libs=""
if grep -q 'not found' <<<"$libs"; then
  echo "$0: $ADVENT lacks libraries on this host:" >&2
  grep 'not found' <<<"$libs" >&2
  exit 1
fi
while read -r lib; do
  copy_in "$lib"
done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$libs")

# libedit (the game's line editor) looks TERM up in terminfo; without it, it says so and
# falls back to a dumb terminal. The whole database is about 250 KB.
for dir in /lib/terminfo /usr/share/terminfo /etc/terminfo; do
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    mkdir -p "$ROOTFS$dir"
    cp -rL "$dir/." "$ROOTFS$dir/"
  fi
done

# the runtime's own default spec, then: our command, cwd and hostname
rm -f "$BUNDLE/config.json"
(cd "$BUNDLE" && "$RUNTIME" spec)
python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
spec["process"]["terminal"] = True
spec["process"]["args"] = ["./advent"]
spec["process"]["cwd"] = "/usr/games"
spec["hostname"] = "colossal-cave"
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
PY
