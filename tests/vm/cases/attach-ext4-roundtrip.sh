#!/bin/bash
# A filesystem on /dev/ublkbN survives a round trip, in zero copy (auto) and
# copy mode (off), and over TLS (nbds://, x509 over TCP) with the kernel's
# TLS (ktls, TLS 1.3) and the user-space tunnel: mkfs.ext4, mount, copy a
# tree of files in, unmount, fsck -f finds nothing, mount again, the tree
# compares equal.
. "$(dirname "$0")/../lib.sh"
. "$UNBD_SOURCE_DIR/tests/integration/support/tls.sh"

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

# The round trip on $DEV; $1 names the case in messages.
ext4_round_trip() {
  local what=$1
  mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 $DEV ($what)"
  mount "$DEV" "$mnt" || fail "mount $DEV ($what)"
  cp -a "$src" "$mnt/" || fail "copy into $DEV ($what)"
  umount "$mnt" || fail "umount $DEV ($what)"
  fsck.ext4 -f -n "$DEV" >"$TESTDIR/fsck.out" 2>&1 ||
    { cat "$TESTDIR/fsck.out"; fail "fsck -f found problems on $DEV ($what)"; }
  # Drop every cached page so the second mount reads through the device.
  blockdev --flushbufs "$DEV"
  echo 3 >/proc/sys/vm/drop_caches
  mount "$DEV" "$mnt" || fail "second mount of $DEV ($what)"
  diff -r --no-dereference "$src" "$mnt/tree" || fail "the tree differs after remount ($what)"
  umount "$mnt"
  detach "$ID"
  echo "$what ($ZC): ext4 round trip clean, $(find "$src" -type f | wc -l) files equal"
}

for zc in auto off; do
  serve_unix "mem-$zc" memory 128M
  attach "$URI" -q 2 --zero-copy=$zc
  expect_zero_copy $zc
  ext4_round_trip "zero copy $zc"
done

modprobe tls || fail "the guest kernel has no tls module (CONFIG_TLS)"
make_tls_credentials localhost
for mode in ktls userspace; do
  start_x509_nbdkit "tls-$mode" memory 128M
  attach "nbds://localhost:$X509_PORT/?tls-certificates=$PKI" -q 2 --tls-mode=$mode
  jq -e --arg m "$mode (TLSv1.3, " '.tls | startswith($m)' <<<"$ATTACH_JSON" >/dev/null ||
    fail "--tls-mode=$mode: $(jq .tls <<<"$ATTACH_JSON")"
  ext4_round_trip "TLS $mode"
done
expect_no_devices
