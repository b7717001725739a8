#!/bin/bash
# fio --verify=crc32c through /dev/ublkbN -- random writes of 4K..1M, QD 32,
# two queues with one fio job pinned to each guest CPU so both queues carry
# I/O -- for zero copy (auto) and copy mode (off). After detach, fio reads the
# export itself through libnbd (ioengine=nbd, --verify_only) and the export's
# sha256 read by libnbd equals the device's.
. "$(dirname "$0")/../lib.sh"

job=(--name=verify --rw=randwrite --bssplit=4k/40:64k/20:256k/20:1m/20
  --iodepth=32 --numjobs=2 --size=32M --offset_increment=32M
  --verify=crc32c --randseed=1234 --group_reporting)

for zc in auto off; do
  serve_unix "mem-$zc" memory 64M
  attach "$URI" -q 2 --zero-copy=$zc
  expect_zero_copy $zc
  [ "$QUEUES" = 2 ] || fail "asked for 2 queues, got $QUEUES"
  fio "${job[@]}" --filename="$DEV" --ioengine=io_uring --direct=1 \
    --cpus_allowed=0-1 --cpus_allowed_policy=split >"$TESTDIR/fio.out" ||
    { cat "$TESTDIR/fio.out"; fail "fio verify through $DEV (zero copy $zc)"; }
  grep -E 'WRITE:|READ:' "$TESTDIR/fio.out"
  dev_sum=$(dev_sha256 "$DEV")
  detach "$ID"

  fio "${job[@]}" --ioengine=nbd --uri="$URI" --verify_only >"$TESTDIR/fio.out" ||
    { cat "$TESTDIR/fio.out"; fail "libnbd read back differs from what fio wrote (zero copy $zc)"; }
  nbd_sum=$(nbd_sha256 "$URI")
  [ "$nbd_sum" = "$dev_sum" ] || fail "export sha256 $nbd_sum != device sha256 $dev_sum (zero copy $zc)"
  echo "zero copy $zc ($ZC): fio verify and libnbd read back agree"
done
expect_no_devices
