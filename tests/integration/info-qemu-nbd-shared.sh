#!/usr/bin/env bash
# qemu-nbd -e 0 (unlimited clients) advertises CAN_MULTI_CONN, over TCP.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

truncate -s 4M "$TESTDIR/disk.img"
port=$(pick_port)
qemu-nbd -f raw -e 0 -t --fork --pid-file="$TESTDIR/pid" -b 127.0.0.1 -p "$port" "$TESTDIR/disk.img" \
  || fail "qemu-nbd failed to start"
cleanup_fn _kill_pidfile "$TESTDIR/pid"

agree_with_nbdinfo "nbd://127.0.0.1:$port/"
expect_field can_multi_conn true
expect_field read_only false
