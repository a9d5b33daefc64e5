#!/usr/bin/env bash
# demo.sh [RUNTIME] - play Colossal Cave Adventure in a container: build the bundle in
# build/demo (scripts/mkadvent.sh: busybox, /usr/games/advent and its libraries, the
# runtime's default spec with a terminal) and "RUNTIME run" it in this terminal, as
# "docker run -it open-adventure ./advent" would: the runtime puts the terminal in raw
# mode, forwards window size changes and gives the terminal back as it found it.
# ("quit" then "y" ends the game; ^C works too.)
# RUNTIME defaults to target/release/berth; any runc-compatible binary works
# (make demo RUNTIME=/usr/sbin/runc).
#
# With stdin not a terminal (a pipe, a file, /dev/null), the game still runs, without a
# terminal, reading its moves from stdin, as "docker run -i" (no -t) would:
#   printf 'n\neast\nquit\ny\n' | make demo
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=${1:-${RUNTIME:-$REPO/target/release/berth}}
BUNDLE=$REPO/build/demo
ID=demo-$$

[ "$(id -u)" = 0 ] || { echo "demo: run as root (containers need namespaces and cgroups)" >&2; exit 1; }
command -v "$RUNTIME" >/dev/null || { echo "demo: runtime $RUNTIME not found (make build?)" >&2; exit 1; }

cleanup() { "$RUNTIME" delete -f "$ID" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$REPO/scripts/mkadvent.sh" "$BUNDLE" "$RUNTIME"

if [ -t 0 ]; then
  echo "+ $RUNTIME run --bundle $BUNDLE $ID" >&2
else
  # A terminal container needs a terminal to hand over; without one, run the game on
  # plain stdio instead of failing.
  echo "demo: stdin is not a terminal: playing without one (process.terminal false), moves read from stdin" >&2
  python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
spec["process"]["terminal"] = False
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
PY
  echo "+ $RUNTIME run --bundle $BUNDLE $ID" >&2
fi

# ^C while the game runs goes to the game (raw mode), not to this script
rc=0
"$RUNTIME" run --bundle "$BUNDLE" "$ID" || rc=$?
# "run" removes a container whose process has exited; delete whatever is left
"$RUNTIME" delete -f "$ID" >/dev/null 2>&1 || true
trap - EXIT
exit "$rc"
