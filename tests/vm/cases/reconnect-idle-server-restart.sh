#!/bin/bash
# The server is killed (-9) while the device is idle: unbd notices the lost
# connections by itself (EOF), without waiting for the next request: within
# 5 s unbd list no longer says connected; once nbdkit is started again it
# reconnects, still without any I/O (connected, one reconnect counted, within
# 15 s), and a read then completes at once.
. "$(dirname "$0")/../lib.sh"

img=$TESTDIR/disk.img
truncate -s 64M "$img"
serve_restartable disk file "$img"
attach "$URI" -q 2
[ "$(device_field connection)" = connected ] || fail "connection is '$(device_field connection)' right after attach"
reads_before=$(awk '{print $1}' "/sys/block/$(basename "$DEV")/stat")

server_kill disk
wait_until 5 '[ "$(device_field connection)" != connected ]' ||
  fail "nbdkit was killed 5 s ago and the idle device still says connected (reconnects $(device_field reconnects)): the lost connection is only noticed at the next request"
echo "server killed: unbd list says '$(device_field connection)' after ${WAITED}s"

server_start disk
wait_until 15 'read -r conn rec <<<"$(device_fields connection reconnects)"
  [ "$conn" = connected ] && [ "$rec" = 1 ]' ||
  fail "nbdkit is back, but after 15 s without I/O unbd list says connection '$conn', reconnects $rec"
echo "server back: connected again after ${WAITED}s without any I/O (reconnects $rec)"
[ "$(awk '{print $1}' "/sys/block/$(basename "$DEV")/stat")" = "$reads_before" ] ||
  fail "the device was read meanwhile: the reconnect was not made without I/O"
t0=$(now)
dd if="$DEV" of=/dev/null bs=4k count=1 iflag=direct status=none || fail "read after the reconnect"
echo "a read after the reconnect took $(since "$t0")s"
daemon_log_connection_lines
detach "$ID"
expect_no_devices
