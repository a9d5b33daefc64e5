#!/usr/bin/env bash
# run.sh [RUNTIME] - the terminal tests (test.py) against RUNTIME (argument, else $RUNTIME,
# else target/release/berth): "run" of Colossal Cave Adventure and of a busybox shell, and
# "exec -t", each in a fresh pty; one line per check, then the totals. Root only.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
exec python3 "$HERE/test.py" "$@"
