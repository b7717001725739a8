#!/bin/bash
# An export without CAN_MULTI_CONN gets one queue (one connection) even
# when -q 2 is asked, with a warning saying why; with multi-conn the same
# export gets the 2 queues asked for. Data goes through either way.
. "$(dirname "$0")/../lib.sh"

serve_unix single --filter=multi-conn memory 64M multi-conn-mode=disable
attach "$URI" -q 2
expect_zero_copy auto
[ "$QUEUES" = 1 ] || fail "no multi-conn, -q 2: got $QUEUES queues, expected 1"
grep -qi 'warning.*multi' "$TESTDIR/attach.err" ||
  fail "no warning about multi-conn on stderr: $(cat "$TESTDIR/attach.err")"
nq=$(ls -d /sys/block/"$(basename "$DEV")"/mq/* | wc -l)
[ "$nq" = 1 ] || fail "the kernel sees $nq hardware queues, expected 1"
listed=$("$UNBD" list --json | jq -r ".[] | select(.id == $ID) | .queues")
[ "$listed" = 1 ] || fail "unbd list shows $listed queues, expected 1"
dd if=/dev/urandom of="$TESTDIR/data" bs=256k count=16 status=none
dd if="$TESTDIR/data" of="$DEV" bs=256k oflag=direct status=none
dd if="$DEV" of="$TESTDIR/back" bs=256k count=16 iflag=direct status=none
cmp "$TESTDIR/back" "$TESTDIR/data" || fail "read back differs (1 queue)"
detach "$ID"

serve_unix multi memory 64M
attach "$URI" -q 2
[ "$QUEUES" = 2 ] || fail "multi-conn, -q 2: got $QUEUES queues, expected 2"
if grep -qi 'warning' "$TESTDIR/attach.err"; then fail "unexpected warning: $(cat "$TESTDIR/attach.err")"; fi
nq=$(ls -d /sys/block/"$(basename "$DEV")"/mq/* | wc -l)
[ "$nq" = 2 ] || fail "the kernel sees $nq hardware queues, expected 2"
detach "$ID"
expect_no_devices
