#!/usr/bin/env bash
# demo.sh [RUNTIME] - build a busybox bundle in build/demo and run one container in it.
# RUNTIME defaults to target/release/berth; any runc-compatible binary works
# (make demo RUNTIME=/usr/sbin/runc).
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

mkdir -p "$BUNDLE"
bash "$REPO/scripts/mkbundle.sh" "$BUNDLE/rootfs"

# the runtime's own default spec, then: no terminal, our command, our hostname
rm -f "$BUNDLE/config.json"
(cd "$BUNDLE" && "$RUNTIME" spec)
python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    spec = json.load(f)
spec["process"]["terminal"] = False
spec["process"]["args"] = [
    "sh", "-c",
    'echo "hello from berth: hostname $(hostname), pid $$"; cat /proc/self/mountinfo | head; id',
]
spec["hostname"] = "berth-demo"
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
    f.write("\n")
PY

echo "+ $RUNTIME run --bundle $BUNDLE $ID" >&2
"$RUNTIME" run --bundle "$BUNDLE" "$ID" </dev/null
# "run" removes a container whose process has exited; delete whatever is left
"$RUNTIME" delete -f "$ID" >/dev/null 2>&1 || true
trap - EXIT
