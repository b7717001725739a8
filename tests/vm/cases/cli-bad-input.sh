#!/bin/bash
# The wrong uses of the CLI that need real ublk devices, in the table format
# of tests/integration/cli-bad-input.sh (tests/bad-input.sh): -n taken, a
# device already gone, a ublk device that another server made, a state file
# from a newer unbd in front of a live device, and exports whose facts no
# block device can have. Each: one line on stderr, the documented exit
# status (1 failed, 2 wrong command line, 3 no such device), nothing left
# behind, and what was there before is still there, untouched.
# Runs in the guest: tests/vm/run -- bash THIS.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../../bad-input.sh"
. "$(dirname "$0")/../../integration/support/info.sh"
export UNBD_STATE_DIR=$TESTDIR/state STATE_DIR=$TESTDIR/state
mkdir -p "$UNBD_STATE_DIR"
foreign_tool=$UNBD_BUILD_DIR/tests/vm/ublk-foreign-device
[ -x "$foreign_tool" ] || fail "$foreign_tool not built"

# A live unbd device, and its mark in the kernel's copy of the device info.
serve_unix disk memory 16M
DISK=$URI
attach "$DISK"
LIVE=$ID LIVE_DEV=$DEV
mark=$("$foreign_tool" mark "$LIVE") || fail "GET_DEV_INFO of device $LIVE"
[ "$mark" = 554e424400000001 ] || fail "device $LIVE carries ublksrv_flags $mark, not unbd's mark"

# A device another ublk server made (added, never started): only /dev/ublkcN.
FOREIGN=$("$foreign_tool" add) || fail "cannot add a foreign ublk device"
cleanup_fn "[ ! -e /dev/ublkc$FOREIGN ] || \"$foreign_tool\" del $FOREIGN"
[ -e "/dev/ublkc$FOREIGN" ] || wait_until 5 "[ -e /dev/ublkc$FOREIGN ]" || fail "/dev/ublkc$FOREIGN did not appear"

# One attached and detached again: gone (after the foreign one, which would
# otherwise take the freed id).
attach "$DISK"
GONE=$ID
detach "$GONE"

# The live device's state file as a newer unbd would write it.
cp "$UNBD_STATE_DIR/$LIVE.json" "$TESTDIR/live.json"
cleanup_fn "cp \"$TESTDIR/live.json\" \"$UNBD_STATE_DIR/$LIVE.json\""
jq '.version = 99' "$TESTDIR/live.json" >"$UNBD_STATE_DIR/$LIVE.json"

: >"$TESTDIR/not-a-socket"
serve_scripted empty --size 0
EMPTY=$URI
serve_scripted huge --size 9223372036854775808
HUGE=$URI
serve_scripted tiny-max --block 1,256,256
TINY_MAX=$URI
serve_scripted big-min --block 65536,65536,1048576
BIG_MIN=$URI
serve_scripted min-above-max --block 4096,4096,1024
MIN_ABOVE_MAX=$URI

bad_input_baseline
# what                                | exit | words on stderr                                              | command
check_bad_input \
  "-n taken by a unbd device           | 1 | ublk device $LIVE already exists (-n): pick another            | \"\$UNBD\" attach \"\$DISK\" -n \$LIVE" \
  "-n taken by another server's device | 1 | ublk device $FOREIGN already exists (-n)                         | \"\$UNBD\" attach \"\$DISK\" -n \$FOREIGN" \
  "-q out of range, ublk present       | 2 | --queues must be between 1 and 64, not 0                         | \"\$UNBD\" attach \"\$DISK\" -q 0" \
  "detach of a device already gone     | 3 | no unbd device $GONE (detached already?)                         | \"\$UNBD\" detach \$GONE" \
  "detach of its path, already gone    | 3 | no unbd device $GONE (detached already?)                         | \"\$UNBD\" detach /dev/ublkb\$GONE" \
  "detach of a device not unbd's       | 3 | ublk device $FOREIGN was not made by unbd: leaving it alone      | \"\$UNBD\" detach /dev/ublkb\$FOREIGN" \
  "recover of a device not unbd's      | 3 | no state file $UNBD_STATE_DIR/$FOREIGN.json                      | \"\$UNBD\" recover \$FOREIGN" \
  "resize of a device not unbd's       | 3 | no state file $UNBD_STATE_DIR/$FOREIGN.json                      | \"\$UNBD\" resize \$FOREIGN" \
  "detach, state file from a newer unbd| 1 | state file version 99 is from a newer unbd                       | \"\$UNBD\" detach \$LIVE" \
  "attach, socket is a regular file    | 1 | $TESTDIR/not-a-socket is not a socket                            | \"\$UNBD\" attach \"nbd+unix:///?socket=\$TESTDIR/not-a-socket\"" \
  "attach, export of 0 bytes           | 1 | (0 bytes) is smaller than one 512-byte block                     | \"\$UNBD\" attach \"\$EMPTY\"" \
  "attach, export of 2^63 bytes        | 1 | announces an export of 9223372036854775808 bytes, more than      | \"\$UNBD\" attach \"\$HUGE\"" \
  "attach, maximum request below 512   | 1 | maximum request size 256 is smaller than its block size 512      | \"\$UNBD\" attach \"\$TINY_MAX\"" \
  "attach, minimum block 64 KiB        | 1 | minimum block size 65536 is larger than the 4096 bytes           | \"\$UNBD\" attach \"\$BIG_MIN\"" \
  "attach, minimum above the maximum   | 1 | maximum payload below the minimum block size                     | \"\$UNBD\" attach \"\$MIN_ABOVE_MAX\""

# Untouched: the live device still reads, the foreign device is still there.
dd if="$LIVE_DEV" of=/dev/null bs=4k count=16 iflag=direct status=none || fail "device $LIVE no longer reads"
[ -e "/dev/ublkc$FOREIGN" ] || fail "the foreign device $FOREIGN was deleted"
cp "$TESTDIR/live.json" "$UNBD_STATE_DIR/$LIVE.json"
detach "$LIVE"
"$foreign_tool" del "$FOREIGN" || fail "cannot delete the foreign device $FOREIGN"
wait_until 10 "[ ! -e /dev/ublkc$FOREIGN ]" || fail "/dev/ublkc$FOREIGN still there"
expect_no_devices
echo PASS
