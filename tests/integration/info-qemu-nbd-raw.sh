#!/usr/bin/env bash
# qemu-nbd -f raw with its default single client: no CAN_MULTI_CONN.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

truncate -s 4M "$TESTDIR/disk.img"
qemu-nbd -f raw -t --fork --pid-file="$TESTDIR/pid" -k "$TESTDIR/sock" -x disk "$TESTDIR/disk.img" \
  || fail "qemu-nbd failed to start"
cleanup_fn _kill_pidfile "$TESTDIR/pid"

agree_with_nbdinfo "nbd+unix:///disk?socket=$TESTDIR/sock"
expect_field size_bytes 4194304
expect_field can_multi_conn false
expect_field export_name '"disk"'
