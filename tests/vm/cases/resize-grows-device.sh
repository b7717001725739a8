#!/bin/bash
# An export that grows: `unbd resize` grows the device (UPDATE_SIZE), a
# mounted ext4 is grown online with resize2fs and its new space is used,
# data written before and after reads back; --resize-check notices a growth
# on its own; fsck is clean; a shrink is refused and leaves the device as it
# was. On a kernel without UBLK_F_UPDATE_SIZE (before 6.16): `unbd resize`
# says so and changes nothing, the device still works; the case then ends
# as skipped.
. "$(dirname "$0")/../lib.sh"

if ! kernel_has UPDATE_SIZE; then
  img=$TESTDIR/disk.img
  truncate -s 64M "$img"
  serve_unix disk file "$img"
  attach "$URI" -q 2
  truncate -s 160M "$img"
  expect_fail "unbd resize without UPDATE_SIZE" "$UNBD" resize "$ID"
  grep -q UPDATE_SIZE "$STDERR" || fail "the refusal does not name UPDATE_SIZE: $(cat "$STDERR")"
  cat "$STDERR"
  [ "$(blockdev --getsize64 "$DEV")" = $((64 << 20)) ] || fail "a refused resize changed the device"
  head -c 1M /dev/urandom >"$TESTDIR/data"
  dd if="$TESTDIR/data" of="$DEV" bs=64k seek=100 oflag=direct status=none || fail "write after the refusal"
  dd if="$DEV" of="$TESTDIR/back" bs=64k skip=100 count=16 iflag=direct status=none || fail "read after the refusal"
  cmp -s "$TESTDIR/back" "$TESTDIR/data" || fail "read back after the refusal differs"
  [ "$(device_field state)" = live ] || fail "the device is '$(device_field state)' after a refused resize"
  detach "$ID"
  expect_no_devices
  skip_part "growing the device (no UBLK_F_UPDATE_SIZE, 6.16+; the refusal was checked)"
  exit 0
fi

img=$TESTDIR/disk.img
truncate -s 64M "$img"
serve_unix disk file "$img"
# No --resize-check here: its periodic check would race `unbd resize` for
# the growth and leave the asked-for resize nothing to do.
attach "$URI" -q 2
[ "$(blockdev --getsize64 "$DEV")" = $((64 << 20)) ] || fail "device is not 64 MiB"

mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4"
mnt=$TESTDIR/mnt
mkdir -p "$mnt"
mount "$DEV" "$mnt" || fail "mount"
cleanup_fn "umount -l '$mnt' 2>/dev/null"
head -c 20M /dev/urandom >"$TESTDIR/before"
cp "$TESTDIR/before" "$mnt/before" && sync || fail "writing before the resize"

truncate -s 160M "$img"
"$UNBD" resize "$ID" >"$TESTDIR/resize.out" 2>&1 || { cat "$TESTDIR/resize.out" >&2; fail "unbd resize"; }
grep -q "grew from" "$TESTDIR/resize.out" || fail "unbd resize said: $(cat "$TESTDIR/resize.out")"
[ "$(blockdev --getsize64 "$DEV")" = $((160 << 20)) ] || fail "device is $(blockdev --getsize64 "$DEV") bytes after growing to 160 MiB"
[ "$(device_field size_bytes)" = $((160 << 20)) ] || fail "unbd list still says size $(device_field size_bytes)"
resize2fs "$DEV" >"$TESTDIR/resize2fs.out" 2>&1 || { cat "$TESTDIR/resize2fs.out" >&2; fail "online resize2fs"; }
avail=$(df -k --output=avail "$mnt" | tail -1)
[ "$avail" -gt $((100 * 1024)) ] || fail "ext4 did not grow: ${avail} KiB available"
head -c 90M /dev/urandom >"$TESTDIR/after"
cp "$TESTDIR/after" "$mnt/after" && sync || fail "using the new space"
echo 3 >/proc/sys/vm/drop_caches
cmp -s "$TESTDIR/before" "$mnt/before" || fail "the file written before the resize differs"
cmp -s "$TESTDIR/after" "$mnt/after" || fail "the file written into the new space differs"

umount "$mnt" || fail "umount"
fsck.ext4 -fn "$DEV" >"$TESTDIR/fsck.out" 2>&1 || { cat "$TESTDIR/fsck.out" >&2; fail "fsck after resizing"; }

# A shrink is refused, and nothing changes (last: truncating the file
# destroys what the filesystem had there).
truncate -s 128M "$img"
expect_fail "a shrunk export" "$UNBD" resize "$ID"
grep -q "shrank" "$STDERR" || fail "the refusal does not say the export shrank: $(cat "$STDERR")"
[ "$(blockdev --getsize64 "$DEV")" = $((160 << 20)) ] || fail "a refused shrink changed the device"
detach "$ID"

# --resize-check 2, on a device of its own: a growth is noticed without asking.
img2=$TESTDIR/checked.img
truncate -s 64M "$img2"
serve_unix checked file "$img2"
attach "$URI" -q 2 --resize-check 2
truncate -s 192M "$img2"
wait_until 20 '[ "$(blockdev --getsize64 "$DEV")" = $((192 << 20)) ]' ||
  fail "--resize-check did not grow the device within 20 s ($(blockdev --getsize64 "$DEV") bytes)"
echo "--resize-check grew the device after $WAITED s"
dd if=/dev/urandom of="$TESTDIR/tail" bs=1M count=1 status=none
dd if="$TESTDIR/tail" of="$DEV" bs=1M seek=190 oflag=direct status=none || fail "write into the checked growth"
dd if="$DEV" of="$TESTDIR/tail.back" bs=1M skip=190 count=1 iflag=direct status=none || fail "read from the checked growth"
cmp -s "$TESTDIR/tail" "$TESTDIR/tail.back" || fail "the new space after --resize-check reads back different"
detach "$ID"
expect_no_devices
