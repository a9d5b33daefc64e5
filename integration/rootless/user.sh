# user.sh - sourced by run.sh and systemd.sh: the test's ordinary user and its sub-ids.
#
# test_user NAME UID: makes the user NAME (uid UID when free, its own group, a home) when
# missing, and a 65536-id /etc/subuid and /etc/subgid range for it when it has none (after
# every range there; useradd adds one by itself where /etc/subuid exists). Sets TU, TUID,
# TGID, TH (its home), SUBUID and SUBGID. Returns non-zero if useradd fails. Both are left
# in place for the next run.
test_user() {
  TU=$1
  if ! getent passwd "$TU" >/dev/null; then
    local uopts=(-m -s /bin/sh)
    if getent group "$TU" >/dev/null; then uopts+=(-g "$TU"); else uopts+=(-U); fi
    getent passwd "$2" >/dev/null || uopts+=(-u "$2") # -U: gid = uid when free
    useradd "${uopts[@]}" "$TU" || return 1
  fi
  TUID=$(id -u "$TU") TGID=$(id -g "$TU")
  TH=$(getent passwd "$TU" | cut -d: -f6)
  if [ ! -d "$TH" ]; then mkdir -p "$TH" && chown "$TUID:$TGID" "$TH"; fi
  SUBUID=$(sub_ids /etc/subuid) SUBGID=$(sub_ids /etc/subgid)
}

sub_ids() { # FILE → the start of $TU's range, added when missing
  local f=$1 start
  touch "$f"
  start=$(awk -F: -v n="$TU" -v u="$TUID" '($1 == n || $1 == u) && $3 >= 65536 {print $2; exit}' "$f")
  if [ -z "$start" ]; then
    start=$(awk -F: 'BEGIN {m = 100000} NF == 3 && $2 + $3 > m {m = $2 + $3} END {print m}' "$f")
    echo "$TU:$start:65536" >>"$f"
  fi
  echo "$start"
}
