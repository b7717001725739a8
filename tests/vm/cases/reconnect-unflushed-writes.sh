#!/bin/bash
# Writes the server acknowledged but was never asked to flush, when the server
# is killed (-9) and comes back: nbdkit's cache filter (writeback) keeps them
# in a cache that dies with it, so the export file never sees them.
# - --durability replay (the default): unbd replays them from its log after
#   the reconnect; they read back through the device and, after a flush, are
#   in the file.
# - --durability trust-server (what nbd.ko and qemu do): they are gone. This
#   is the control that shows the kill really loses data, i.e. that the
#   replay case above proves something.
# - --durability fail-flush: they are gone, and the next FLUSH fails (EIO) so
#   that a filesystem learns it; the FLUSH after that succeeds.
. "$(dirname "$0")/../lib.sh"

img=$TESTDIR/disk.img
truncate -s 64M "$img"
serve_restartable disk --filter=cache file "$img" cache=writeback
pattern=$TESTDIR/pattern
head -c 8M /dev/urandom >"$pattern"
want=$(sha256sum <"$pattern" | cut -d' ' -f1)
zeros=$(head -c 8M /dev/zero | sha256sum | cut -d' ' -f1)
# sha256 of the 8 MiB at MiB offset $2 of file or device $1 ($3: dd iflag).
slice_sha() {
  dd if="$1" bs=1M skip="$2" count=8 ${3:+iflag=$3} status=none | sha256sum | cut -d' ' -f1
}

off=0
for mode in replay trust-server fail-flush; do
  echo "=== --durability $mode"
  attach "$URI" -q 2 --durability "$mode"
  [ "$(device_field durability)" = "$mode" ] ||
    fail "asked for --durability $mode, unbd list says '$(device_field durability)'"
  dd if="$pattern" of="$DEV" bs=1M seek=$off oflag=direct status=none || fail "write to $DEV ($mode)"
  [ "$(slice_sha "$DEV" $off direct)" = "$want" ] || fail "read back before the kill differs ($mode)"
  # The writes are acknowledged but only in nbdkit's cache, not in the file.
  [ "$(slice_sha "$img" $off)" = "$zeros" ] ||
    fail "control: the export file already has the unflushed writes ($mode): the cache filter wrote through"

  server_restart disk
  got=$(slice_sha "$DEV" $off direct) || fail "read after the restart failed ($mode)"
  wait_connection connected 30
  case $mode in
  replay)
    [ "$got" = "$want" ] || fail "replay: acknowledged writes lost across the server restart"
    sync "$DEV" || fail "replay: FLUSH after the restart failed"
    [ "$(slice_sha "$img" $off)" = "$want" ] || fail "replay: after a FLUSH the export file still lacks the writes"
    echo "replay: the acknowledged unflushed writes survived the kill and are now in the file"
    ;;
  trust-server)
    [ "$got" = "$zeros" ] ||
      fail "trust-server: expected the writes to be lost (read back $got), so the replay case proves nothing"
    sync "$DEV" || fail "trust-server: FLUSH after the restart failed"
    echo "trust-server: the writes are lost, as expected without the log"
    ;;
  fail-flush)
    [ "$got" = "$zeros" ] || echo "fail-flush: note: the writes read back after all"
    if sync "$DEV" 2>"$TESTDIR/sync.err"; then
      fail "fail-flush: the first FLUSH after losing acknowledged writes succeeded"
    fi
    grep -q 'Input/output error' "$TESTDIR/sync.err" || fail "fail-flush: FLUSH failed, but not with EIO: $(cat "$TESTDIR/sync.err")"
    sync "$DEV" || fail "fail-flush: the FLUSH after the failed one failed too"
    echo "fail-flush: the writes are lost and the first FLUSH said so (EIO); the next one succeeded"
    ;;
  esac
  daemon_log_connection_lines | tail -n 6
  detach "$ID"
  off=$((off + 8))
done
expect_no_devices
