#!/bin/bash
# A filesystem on /dev/ublkbN survives a round trip, in zero copy (auto) and
# copy mode (off): mkfs.ext4, mount, copy a tree of files in, unmount,
# fsck -f finds nothing, mount again, the tree compares equal.
. "$(dirname "$0")/../lib.sh"

# The tree: real text files plus generated binaries from 1 byte to 3 MiB.
src=$TESTDIR/tree
mkdir -p "$src/gen/a/b"
cp -r /usr/share/doc/bash /usr/share/doc/coreutils "$src/" 2>/dev/null || cp -r /etc/default "$src/"
for size in 1 511 4096 65537 1048576 3145728; do
  head -c "$size" /dev/urandom >"$src/gen/a/b/rand-$size"
done
ln -s a/b/rand-4096 "$src/gen/link"
mnt=$TESTDIR/mnt
mkdir -p "$mnt"
cleanup_fn "mountpoint -q $mnt && umount $mnt"

for zc in auto off; do
  serve_unix "mem-$zc" memory 128M
  attach "$URI" -q 2 --zero-copy=$zc
  expect_zero_copy $zc
  mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 $DEV ($zc)"
  mount "$DEV" "$mnt" || fail "mount $DEV ($zc)"
  cp -a "$src" "$mnt/" || fail "copy into $DEV ($zc)"
  umount "$mnt" || fail "umount $DEV ($zc)"
  fsck.ext4 -f -n "$DEV" >"$TESTDIR/fsck.out" 2>&1 ||
    { cat "$TESTDIR/fsck.out"; fail "fsck -f found problems on $DEV ($zc)"; }
  # Drop every cached page so the second mount reads through the device.
  blockdev --flushbufs "$DEV"
  echo 3 >/proc/sys/vm/drop_caches
  mount "$DEV" "$mnt" || fail "second mount of $DEV ($zc)"
  diff -r --no-dereference "$src" "$mnt/tree" || fail "the tree differs after remount ($zc)"
  umount "$mnt"
  detach "$ID"
  echo "zero copy $zc ($ZC): ext4 round trip clean, $(find "$src" -type f | wc -l) files equal"
done
expect_no_devices
