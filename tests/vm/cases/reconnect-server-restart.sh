#!/bin/bash
# The server is killed (-9) and started again on the same socket 10 times
# during a 120 s fio --verify=crc32c run (4K..256K random writes, QD 32, two
# queues, zero copy auto): unbd reconnects each time, fio sees no I/O error
# and no verify failure, `unbd list` counts the reconnects and says connected.
# The export is a file behind nbdkit's cache filter in writeback mode, which
# loses every write it acknowledged but was not asked to flush when killed:
# only unbd's durability log (the default, replayed after each reconnect)
# keeps those. At the end, after a flush, the file alone (read by libnbd
# through a fresh nbdkit) equals the device. The daemon log says each time
# that the connections are back (and how long I/O was held).
# The other combinations (copy mode, no cache filter) run shorter in
# reconnect-server-restart-modes.sh.
. "$(dirname "$0")/../lib.sh"

img=$TESTDIR/disk.img
truncate -s 64M "$img"
serve_restartable disk --filter=cache file "$img" cache=writeback
attach "$URI" -q 2 --zero-copy=auto
expect_zero_copy auto
[ "$QUEUES" = 2 ] || fail "asked for 2 queues, got $QUEUES"
[ "$(device_field durability)" = replay ] ||
  fail "durability is '$(device_field durability)', expected replay (the server advertises FLUSH)"
[ "$(device_field connection)" = connected ] || fail "connection is '$(device_field connection)' right after attach"
[ "$(device_field reconnects)" = 0 ] || fail "reconnects is '$(device_field reconnects)' right after attach"

fio_through_restarts disk 120 10
n=$(device_field reconnects)
[ "$n" -ge 10 ] || fail "10 server restarts, but unbd list counts $n reconnects"
cp "$STATE_DIR/$ID.log" "$TESTDIR/daemon.log"
expect_durable disk "$img"
expect_no_devices
# Last, so that a log that says too little does not hide the checks above.
STATE_DIR=$TESTDIR ID=daemon expect_log_says_back 10
