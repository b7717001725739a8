#!/bin/bash
# attach an nbdkit memory export over a Unix socket and over TCP, with
# --zero-copy=auto and --zero-copy=off: bytes written through /dev/ublkbN are
# what libnbd reads from the export and the other way round; `unbd list`
# shows the device live with the mode really in use (no silent fallback:
# auto is zero copy where the kernel has AUTO_BUF_REG, copy mode on 6.12);
# each queue is a thread named "unbd qN" (top -H, ps -L); detach leaves no
# device, no state file and no daemon behind.
# Runs in the guest: tests/vm/run -- bash THIS.
. "$(dirname "$0")/../../functions.sh"
[ -e /dev/ublk-control ] || fail "/dev/ublk-control missing (not in the VM?)"
export UNBD_STATE_DIR=$TESTDIR/state
cleanup_fn '"$UNBD" detach --all'
# libnbd's Python module belongs to the system python3, not to one first in PATH.
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }
auto_mode=auto-buf-reg/
"$UNBD_BUILD_DIR/tests/vm/ublk-features-check" --has AUTO_BUF_REG >/dev/null || auto_mode=off/

sock=$TESTDIR/nbd.sock
port=$(pick_port)
start_nbdkit -P "$TESTDIR/unix.pid" -U "$sock" memory 64M
start_nbdkit -P "$TESTDIR/tcp.pid" -i 127.0.0.1 -p "$port" memory 64M

head -c 8M /dev/urandom >"$TESTDIR/to-device"
head -c 4M /dev/urandom >"$TESTDIR/to-export"

check_queue_threads() {  # pid queues: one thread "unbd qN" per queue
  local q
  for ((q = 0; q < $2; q++)); do
    grep -qx "unbd q$q" /proc/"$1"/task/*/comm || fail "no thread named 'unbd q$q' in daemon $1"
  done
}

check_mode() {
  local uri=$1 mode=$2 json dev id zc pid
  echo "== $uri --zero-copy=$mode"
  json=$("$UNBD" attach "$uri" -q 2 --zero-copy="$mode" --json) || fail "attach $uri --zero-copy=$mode"
  dev=$(jq -r .dev <<<"$json"); id=$(jq -r .id <<<"$json")
  zc=$(jq -r .zero_copy <<<"$json"); pid=$(jq -r .pid <<<"$json")
  echo "   $dev zero_copy=$zc pid=$pid"
  [ -b "$dev" ] || fail "$dev is not a block device"
  case $mode in
    auto) [[ $zc == "$auto_mode"* ]] || fail "auto should pick ${auto_mode}* on this kernel, got $zc" ;;
    off) [[ $zc == off/* ]] || fail "--zero-copy=off gave $zc" ;;
  esac
  [ "$(jq -r .size_bytes <<<"$json")" = $((64 << 20)) ] || fail "size_bytes: $json"
  [ "$(blockdev --getsize64 "$dev")" = $((64 << 20)) ] || fail "device size"
  "$UNBD" list --json | jq -e --arg dev "$dev" --arg zc "$zc" \
    '.[] | select(.dev == $dev and .state == "live" and .zero_copy == $zc and .queues == 2)' >/dev/null ||
    fail "unbd list does not show $dev live with $zc"
  check_queue_threads "$pid" 2

  # device -> export
  dd if="$TESTDIR/to-device" of="$dev" bs=1M oflag=direct conv=fsync status=none || fail "write to $dev"
  nbdsh -u "$uri" -c 'import sys; sys.stdout.buffer.write(h.pread(8 << 20, 0))' >"$TESTDIR/from-export"
  cmp "$TESTDIR/to-device" "$TESTDIR/from-export" || fail "export differs from what was written to $dev"

  # export -> device
  nbdsh -u "$uri" -c "h.pwrite(open('$TESTDIR/to-export', 'rb').read(), 16 << 20)"
  dd if="$dev" of="$TESTDIR/from-device" bs=1M skip=16 count=4 iflag=direct status=none || fail "read $dev"
  cmp "$TESTDIR/to-export" "$TESTDIR/from-device" || fail "$dev differs from what libnbd wrote"

  "$UNBD" detach "$dev" || fail "detach $dev"
  [ ! -e "$dev" ] || fail "$dev still exists after detach"
  [ ! -e "/dev/ublkc$id" ] || fail "/dev/ublkc$id still exists after detach"
  [ ! -e "$UNBD_STATE_DIR/$id.json" ] || fail "state file left behind"
  ! kill -0 "$pid" 2>/dev/null || fail "daemon $pid still running after detach"
}

for mode in auto off; do
  check_mode "nbd+unix:///?socket=$sock" "$mode"
  check_mode "nbd://127.0.0.1:$port/" "$mode"
done
[ -z "$(ls /dev/ublkb* 2>/dev/null)" ] || fail "devices left: $(ls /dev/ublkb*)"
echo "PASS"
