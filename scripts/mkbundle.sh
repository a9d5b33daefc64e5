#!/usr/bin/env bash
# mkbundle.sh ROOTFS_DIR - make (or refresh) a busybox root filesystem in ROOTFS_DIR:
# a static busybox at /bin/busybox with one symlink per applet in /bin, /etc/passwd,
# /etc/group, and the usual empty mount points. Needs busybox-static (make deps).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 ROOTFS_DIR" >&2; exit 2; }
ROOTFS=$1

is_static() { [ -x "$1" ] && ! ldd "$1" >/dev/null 2>&1; }
BUSYBOX=""
for c in "${BUSYBOX_BIN:-}" /bin/busybox /usr/bin/busybox /usr/lib/busybox/busybox-static; do
  [ -n "$c" ] && is_static "$c" && { BUSYBOX=$c; break; }
done
[ -n "$BUSYBOX" ] || { echo "$0: no static busybox found (apt-get install busybox-static)" >&2; exit 1; }

mkdir -p "$ROOTFS"/{bin,proc,sys,dev,tmp,etc,root,run,mnt}
chmod 1777 "$ROOTFS/tmp"
chmod 0700 "$ROOTFS/root"
# install(1) replaces the file, so a busybox still running from this rootfs is fine
install -m 0755 "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$ROOTFS/bin/busybox" --list); do
  [ -e "$ROOTFS/bin/$applet" ] || [ -L "$ROOTFS/bin/$applet" ] || ln -s busybox "$ROOTFS/bin/$applet"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$ROOTFS/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > "$ROOTFS/etc/group"
