#!/bin/bash
# blkdiscard and `blkdiscard -z` on /dev/ublkbN reach the server (trim and
# write-zeroes, which nbdkit memory advertises) and the range reads back as
# zeros, through the device and through libnbd, in zero copy and copy mode;
# bytes outside the range are untouched.
. "$(dirname "$0")/../lib.sh"

mib=$((1 << 20))
zeros_sha=$(head -c $((8 * mib)) /dev/zero | sha256sum | cut -d' ' -f1)
range_sha() {  # DEV OFFSET_MIB LEN_MIB
  dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none | sha256sum | cut -d' ' -f1
}
nbd_range_sha() {  # URI OFFSET_MIB LEN_MIB
  nbdsh -u "$1" -c "import hashlib; print(hashlib.sha256(h.pread($3 << 20, $2 << 20)).hexdigest())"
}

for zc in auto off; do
  serve_unix "mem-$zc" memory 64M
  attach "$URI" --zero-copy=$zc
  expect_zero_copy $zc
  [ "$(sysfs "$DEV" queue/discard_max_bytes)" -gt 0 ] || fail "$DEV does not offer discard ($zc)"
  [ "$(sysfs "$DEV" queue/write_zeroes_max_bytes)" -gt 0 ] || fail "$DEV does not offer write zeroes ($zc)"

  # Fill 32 MiB with random data, then discard [8,16) and zero [16,24).
  dd if=/dev/urandom of="$DEV" bs=1M count=32 oflag=direct status=none
  before_tail=$(range_sha "$DEV" 24 8)
  [ "$before_tail" != "$zeros_sha" ] || fail "random data reads as zeros ($zc)"
  blkdiscard -o $((8 * mib)) -l $((8 * mib)) "$DEV" || fail "blkdiscard $DEV ($zc)"
  blkdiscard -z -o $((16 * mib)) -l $((8 * mib)) "$DEV" || fail "blkdiscard -z $DEV ($zc)"

  [ "$(range_sha "$DEV" 8 8)" = "$zeros_sha" ] || fail "discarded range does not read as zeros on $DEV ($zc)"
  [ "$(range_sha "$DEV" 16 8)" = "$zeros_sha" ] || fail "blkdiscard -z range does not read as zeros on $DEV ($zc)"
  [ "$(range_sha "$DEV" 24 8)" = "$before_tail" ] || fail "data after the range changed ($zc)"
  [ "$(range_sha "$DEV" 0 8)" != "$zeros_sha" ] || fail "data before the range was zeroed ($zc)"
  detach "$ID"

  [ "$(nbd_range_sha "$URI" 8 8)" = "$zeros_sha" ] || fail "discarded range is not zero in the export ($zc)"
  [ "$(nbd_range_sha "$URI" 16 8)" = "$zeros_sha" ] || fail "zeroed range is not zero in the export ($zc)"
  [ "$(nbd_range_sha "$URI" 24 8)" = "$before_tail" ] || fail "export data after the range changed ($zc)"
  echo "zero copy $zc ($ZC): blkdiscard and blkdiscard -z read back as zeros"
done
expect_no_devices
