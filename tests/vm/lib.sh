# Helpers for the VM cases (tests/vm/cases/*.sh), on top of tests/functions.sh.
# Source it first:  . "$(dirname "$0")/../lib.sh"
# Every case runs as root inside the ublk-capable guest (tests/vm/run).
#
#   serve_unix NAME NBDKIT-ARGS...  nbdkit on $TESTDIR/NAME.sock; sets SOCK, URI
#   serve_tcp NBDKIT-ARGS...        nbdkit on 127.0.0.1:PORT; sets PORT, URI
#   attach URI UNBD-ATTACH-ARGS...  `unbd attach --json`; sets DEV, ID, ZC,
#                                   QUEUES, ATTACH_JSON; detached on exit
#   expect_zero_copy MODE           ZC (and `unbd list`) match --zero-copy=MODE
#   detach ID                       `unbd detach ID`, then ID must be gone
#   expect_no_devices [KEEP...]     no /dev/ublk[bc]*, nothing in /run/unbd
#                                   but the files named
#   nbd_sha256 URI                  sha256 of the whole export, read by libnbd
#   dev_sha256 DEV                  sha256 of the whole device (O_DIRECT)
#   sysfs DEV ATTR                  /sys/block/ublkbN/ATTR
. "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"

# nbdsh needs the distribution's python3 (python3-libnbd), not a user's.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

[ "${UNBD_VM_GUEST:-0}" = 1 ] && [ -e /dev/ublk-control ] ||
  fail "not in the ublk test VM (run through tests/vm/run -- bash $0)"
[ -x "$UNBD" ] || fail "unbd binary $UNBD not built"
STATE_DIR=${UNBD_STATE_DIR:-/run/unbd}

serve_unix() {
  local name=$1; shift
  # A debugging knob: VMTEST_TRANSPORT=tcp serves these exports over TCP.
  if [ "${VMTEST_TRANSPORT:-unix}" = tcp ]; then serve_tcp "$@"; return; fi
  SOCK=$TESTDIR/$name.sock
  start_nbdkit -P "$TESTDIR/$name.pid" -U "$SOCK" "$@"
  URI="nbd+unix:///?socket=$SOCK"
}

serve_tcp() {
  local name=tcp$RANDOM
  PORT=$(pick_port)
  start_nbdkit -P "$TESTDIR/$name.pid" -i 127.0.0.1 -p "$PORT" "$@"
  URI="nbd://127.0.0.1:$PORT/"
}

# On exit. A failing case ($rc is _run_cleanups' status) shows the daemon's log.
_detach_if_attached() {
  if [ "${rc:-0}" != 0 ] && [ -s "$STATE_DIR/$1.log" ]; then
    echo "--- daemon log of device $1:" >&2
    tail -n 40 "$STATE_DIR/$1.log" >&2
  fi
  [ -e "$STATE_DIR/$1.json" ] || [ -e "/dev/ublkc$1" ] || return 0
  "$UNBD" detach "$1" || echo "cleanup: unbd detach $1 failed" >&2
}

attach() {
  local uri=$1; shift
  ATTACH_JSON=$("$UNBD" attach --json "$uri" "$@" 2>"$TESTDIR/attach.err") || {
    cat "$TESTDIR/attach.err" >&2
    fail "unbd attach $uri $* failed"
  }
  cat "$TESTDIR/attach.err" >&2
  ID=$(jq -er .id <<<"$ATTACH_JSON") || fail "attach --json has no id: $ATTACH_JSON"
  cleanup_fn _detach_if_attached "$ID"
  DEV=$(jq -er .dev <<<"$ATTACH_JSON")
  ZC=$(jq -er .zero_copy <<<"$ATTACH_JSON")
  QUEUES=$(jq -er .queues <<<"$ATTACH_JSON")
  [ "$DEV" = "/dev/ublkb$ID" ] || fail "attach --json: dev $DEV does not match id $ID"
  [ -b "$DEV" ] || fail "$DEV is not a block device right after attach"
  echo "attached $uri as $DEV (zero_copy=$ZC queues=$QUEUES)"
}

# The mode in use must be the one asked for, never a silent fallback: the
# test kernel has AUTO_BUF_REG, so auto must pick a zero-copy mode.
expect_zero_copy() {
  local mode=$1 listed
  listed=$("$UNBD" list --json | jq -er ".[] | select(.id == $ID) | .zero_copy") ||
    fail "unbd list --json does not show device $ID"
  [ "$listed" = "$ZC" ] || fail "unbd list says zero_copy=$listed, attach said $ZC"
  case $mode in
  off) [[ $ZC == off/* ]] || fail "--zero-copy=off gave zero_copy=$ZC, expected copy mode (off/...)" ;;
  auto | on) [[ $ZC != off/* && -n $ZC ]] || fail "--zero-copy=$mode gave zero_copy=$ZC on a kernel with AUTO_BUF_REG" ;;
  *) fail "expect_zero_copy: unknown mode $mode" ;;
  esac
}

detach() {
  "$UNBD" detach "$1" || fail "unbd detach $1 failed"
  [ ! -e "/dev/ublkb$1" ] || fail "/dev/ublkb$1 still exists after detach"
  [ ! -e "/dev/ublkc$1" ] || fail "/dev/ublkc$1 still exists after detach"
  [ ! -e "$STATE_DIR/$1.json" ] || fail "$STATE_DIR/$1.json still exists after detach"
}

# The daemon removes its log just after the device is gone: allow it 5 s.
# Arguments: files in $STATE_DIR that may stay (a killed daemon's log).
expect_no_devices() {
  local left f
  for _ in $(seq 50); do
    left=$(ls -d /dev/ublkb* /dev/ublkc* "$STATE_DIR"/* 2>/dev/null || true)
    for f in "$@"; do left=$(grep -vFx "$STATE_DIR/$f" <<<"$left" || true); done
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  fail "left behind: $(echo $left)"
}

nbd_sha256() {
  nbdsh -u "$1" -c '
import hashlib
size, step, d = h.get_size(), 4 << 20, hashlib.sha256()
for off in range(0, size, step):
    d.update(h.pread(min(step, size - off), off))
print(d.hexdigest())'
}

dev_sha256() {
  dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}

sysfs() { cat "/sys/block/$(basename "$1")/$2"; }
