#!/bin/bash
# An export whose minimum block size is 4096 (nbdkit blocksize-policy
# filter) gives a device with 4096-byte logical blocks; 4 KiB-aligned direct
# I/O works, 512-byte direct I/O is refused by the kernel, never sent.
. "$(dirname "$0")/../lib.sh"

serve_unix bs4k --filter=blocksize-policy memory 64M \
  blocksize-minimum=4096 blocksize-error-policy=error
for zc in auto off; do
  attach "$URI" --zero-copy=$zc
  expect_zero_copy $zc
  [ "$(jq -r .logical_block_size <<<"$ATTACH_JSON")" = 4096 ] ||
    fail "attach --json logical_block_size is not 4096 ($zc): $ATTACH_JSON"
  lbs=$(sysfs "$DEV" queue/logical_block_size)
  [ "$lbs" = 4096 ] || fail "logical_block_size in sysfs is $lbs, not 4096 ($zc)"
  [ "$(blockdev --getss "$DEV")" = 4096 ] || fail "blockdev --getss is not 4096 ($zc)"
  pbs=$(sysfs "$DEV" queue/physical_block_size)
  [ "$pbs" -ge 4096 ] || fail "physical_block_size $pbs < 4096 ($zc)"

  head -c 65536 /dev/urandom >"$TESTDIR/data"
  dd if="$TESTDIR/data" of="$DEV" bs=4096 seek=3 oflag=direct status=none || fail "4K direct write ($zc)"
  dd if="$DEV" of="$TESTDIR/back" bs=4096 skip=3 count=16 iflag=direct status=none
  cmp "$TESTDIR/back" "$TESTDIR/data" || fail "4K direct read back differs ($zc)"
  if dd if=/dev/zero of="$DEV" bs=512 count=1 oflag=direct status=none 2>/dev/null; then
    fail "a 512-byte direct write to a 4096-byte-sector device succeeded ($zc)"
  fi
  detach "$ID"
  echo "zero copy $zc ($ZC): logical block size $lbs, physical $pbs"
done
expect_no_devices
