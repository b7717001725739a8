#!/bin/bash
# An ext4 on the device stays mounted read-write while its server (the file
# plugin behind nbdkit's cache filter in writeback mode, which drops unflushed
# writes when killed) is killed (-9) and started again twice, under a writer
# that fsyncs and renames files. Just before each kill, 1 MiB is written with
# O_DIRECT and no fsync: acknowledged, but only in nbdkit's cache, so it reads
# back right only if unbd replayed it (with --durability trust-server this
# case fails there). Then: the writer saw no error, the mount is still rw and
# a write + fsync works, the kernel logged no I/O or ext4 error for the
# device, fsck -fn is clean after umount, and -- after a detach, another
# kill -9 and a fresh attach, so that only what reached the export file
# counts -- fsck is still clean and every file has the content written.
. "$(dirname "$0")/../lib.sh"

img=$TESTDIR/disk.img
truncate -s 128M "$img"
serve_restartable disk --filter=cache file "$img" cache=writeback
attach "$URI" -q 2 --zero-copy=auto
expect_zero_copy auto
mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4 $DEV"
mnt=$TESTDIR/mnt manifest=$TESTDIR/manifest
mkdir -p "$mnt" "$TESTDIR/src"
: >"$manifest"
cleanup_fn "mountpoint -q $mnt && umount $mnt"
mount -o errors=remount-ro "$DEV" "$mnt" || fail "mount $DEV"
dmesg_mark
dev=$(basename "$DEV")

# The writer: files of 4 KiB..1 MiB into 8 directories; odd ones written with
# fsync, even ones written to a temporary name, fsynced, renamed; the
# directory synced every 10 files. A file goes into the manifest (its sha256
# as generated) only once it is complete. Any error ends the writer.
writer() {
  set -e
  local i=0 size f tmp d
  while [ ! -e "$TESTDIR/stop" ]; do
    i=$((i + 1))
    size=$(((RANDOM % 256 + 1) * 4096))
    d=d$((i % 8)) f=$TESTDIR/src/f$i
    mkdir -p "$mnt/$d"
    head -c "$size" /dev/urandom >"$f"
    if ((i % 2)); then
      dd if="$f" of="$mnt/$d/f$i" bs=64k conv=fsync status=none
    else
      tmp=$mnt/$d/.f$i.tmp
      dd if="$f" of="$tmp" bs=64k conv=fsync status=none
      mv "$tmp" "$mnt/$d/f$i"
    fi
    ((i % 10)) || sync -f "$mnt/$d"
    echo "$(sha256sum <"$f" | cut -d' ' -f1)  $d/f$i" >>"$manifest"
    rm -f "$f"
  done
}
writer >"$TESTDIR/writer.log" 2>&1 &
writer_pid=$!
cleanup_fn "touch $TESTDIR/stop; kill $writer_pid 2>/dev/null"

for k in 1 2; do
  sleep 6
  kill -0 $writer_pid 2>/dev/null || { cat "$TESTDIR/writer.log"; fail "the writer stopped before kill $k"; }
  before=$(wc -l <"$manifest")
  # Just before the kill, 1 MiB written with O_DIRECT and no fsync: acknowledged
  # by nbdkit, held in its cache only, lost with it unless unbd replays it.
  head -c 1M /dev/urandom >"$TESTDIR/probe$k"
  dd if="$TESTDIR/probe$k" of="$mnt/probe$k" bs=1M oflag=direct status=none || fail "O_DIRECT write of probe$k"
  probe_sum=$(sha256sum <"$TESTDIR/probe$k" | cut -d' ' -f1)
  server_kill disk
  w=$(writes_done "$DEV")
  server_start disk
  wait_writes_after "$w" 60
  wait_connection connected 30
  echo "kill $k: writes completing ${WAITED}s after nbdkit started; $before files written so far"
  got=$(dd if="$mnt/probe$k" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
  [ "$got" = "$probe_sum" ] || fail "probe$k (written with O_DIRECT just before kill $k, never fsynced) reads back different"
  echo "$probe_sum  probe$k" >>"$manifest"
done
sleep 5
touch "$TESTDIR/stop"
wait $writer_pid || { cat "$TESTDIR/writer.log"; fail "the writer failed (status $?)"; }
files=$(wc -l <"$manifest")
[ "$files" -ge 10 ] || fail "the writer wrote only $files files"
[ "$(device_field reconnects)" -ge 2 ] || fail "2 server kills, unbd list counts $(device_field reconnects) reconnects"

opts=$(awk -v m="$mnt" '$2 == m { print $4 }' /proc/mounts)
[[ $opts == rw,* ]] || fail "the filesystem is no longer mounted read-write: $opts"
timeout 60 dd if=/dev/urandom of="$mnt/after" bs=64k count=16 conv=fsync status=none ||
  fail "write + fsync after the restarts failed"
if dmesg_since_mark | grep -E "$dev\b" | grep -iE 'error|fail|read-only|abort'; then
  fail "the kernel logged errors for $dev"
fi
echo "ext4 stayed mounted ($opts), $files files written through 2 server kills"
daemon_log_connection_lines

umount "$mnt" || fail "umount $DEV"
fsck.ext4 -f -n "$DEV" >"$TESTDIR/fsck.out" 2>&1 || { cat "$TESTDIR/fsck.out"; fail "fsck -f found problems"; }

# Only what reached the export file counts: detach, kill the server with its
# cache, attach again.
detach "$ID"
server_restart disk
attach "$URI" -q 2
fsck.ext4 -f -n "$DEV" >"$TESTDIR/fsck.out" 2>&1 ||
  { cat "$TESTDIR/fsck.out"; fail "fsck -f found problems after a detach and a server kill"; }
mount -o ro "$DEV" "$mnt" || fail "mount after a detach and a server kill"
(cd "$mnt" && sha256sum -c --quiet "$manifest") || fail "files differ from what was written"
umount "$mnt"
detach "$ID"
echo "fsck clean and all $files files equal after a detach and a server kill"
expect_no_devices
