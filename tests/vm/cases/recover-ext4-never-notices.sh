#!/bin/bash
# ext4 mounted on the device while files are written; the daemon is
# SIGKILLed and `unbd attach -n ID URI` (what a restart policy runs again)
# recovers the device instead of failing: the filesystem never notices (no
# I/O error in the kernel log, still mounted read-write), fsck is clean and
# the files compare. Then a live restart (`unbd restart`, QUIESCE_DEV) under
# the same load, with the pause printed; and --on-daemon-loss=fail makes I/O
# fail at once while no daemon runs, until `unbd recover`. A kernel without
# QUIESCE (6.16) or RECOVERY_FAIL_IO (6.13) gets unbd's refusals checked
# instead of those two parts, and the case ends as skipped.
. "$(dirname "$0")/../lib.sh"

img=$TESTDIR/disk.img
truncate -s 128M "$img"
# -t 1: see recover-daemon-killed.sh (an nbdkit 1.32 assertion).
serve_restartable disk -t 1 file "$img"
attach "$URI" -q 2
uri=$URI
mkfs.ext4 -q -F "$DEV" || fail "mkfs.ext4"
mnt=$TESTDIR/mnt
mkdir -p "$mnt"
mount "$DEV" "$mnt" || fail "mount"
cleanup_fn "umount -l '$mnt' 2>/dev/null"
dmesg_mark

writer() {  # files 0..N-1 with known content, synced
  local i
  for i in $(seq 0 39); do
    head -c 1M /dev/urandom >"$TESTDIR/src-$i"
    cp "$TESTDIR/src-$i" "$mnt/f-$i" && sync "$mnt/f-$i" || return 1
  done
}
writer &
writer_pid=$!
sleep 3
pid=$(device_field pid)
kill -9 "$pid"
wait_until 30 '[ "$(device_field state)" = quiesced ]' || fail "device not quiesced after SIGKILL"
t0=$(now)
"$UNBD" attach -n "$ID" "$uri" --json >"$TESTDIR/reattach.json" 2>"$TESTDIR/reattach.err" ||
  { cat "$TESTDIR/reattach.err" >&2; fail "attach -n $ID of the quiesced device did not recover it"; }
grep -q recovering "$TESTDIR/reattach.err" || fail "attach -n $ID did not say it recovered: $(cat "$TESTDIR/reattach.err")"
[ "$(jq -r .dev "$TESTDIR/reattach.json")" = "$DEV" ] || fail "recovered a different device"
echo "recovered by attach -n in $(since "$t0") s"

sleep 2
if kernel_has QUIESCE; then
  t0=$(now)
  "$UNBD" restart "$ID" >"$TESTDIR/restart.out" 2>&1 || { cat "$TESTDIR/restart.out" >&2; fail "unbd restart $ID"; }
  echo "live restart took $(since "$t0") s"
else
  pid=$(device_field pid)
  expect_fail "unbd restart without QUIESCE" "$UNBD" restart "$ID"
  grep -q QUIESCE "$STDERR" || fail "the refusal does not name QUIESCE: $(cat "$STDERR")"
  cat "$STDERR"
  [ "$(device_field pid)" = "$pid" ] && [ "$(device_field state)" = live ] ||
    fail "a refused restart changed the daemon: pid $(device_field pid), state $(device_field state)"
  skip_part "live restart (no UBLK_F_QUIESCE, 6.16+; the refusal was checked)"
fi
wait "$writer_pid" || fail "writing files through a daemon kill and a restart failed"
grep -q " $mnt ext4 rw" /proc/mounts || fail "ext4 is no longer mounted read-write: $(grep "$mnt" /proc/mounts)"
if dmesg_since_mark | grep -iE "$(basename "$DEV")|ext4" | grep -iE 'error|fail'; then
  fail "the kernel logged errors for the device or ext4"
fi
for i in $(seq 0 39); do cmp -s "$TESTDIR/src-$i" "$mnt/f-$i" || fail "file f-$i differs"; done
umount "$mnt" || fail "umount"
# The daemons started while the disk was mounted (attach -n, restart) must
# not keep a copy of that mount in their own namespace (daemon/mount_namespace.h):
# after the user's umount, no process may still have it.
majmin=$(cat "/sys/block/$(basename "$DEV")/dev")
held=$(grep -l " $majmin " /proc/[0-9]*/mountinfo 2>/dev/null || true)
[ -z "$held" ] || fail "after umount, still mounted in the namespace of: $(echo "$held" | cut -d/ -f3 | xargs -I{} cat /proc/{}/comm 2>/dev/null | sort | uniq -c | xargs)"
fsck.ext4 -fn "$DEV" >"$TESTDIR/fsck.out" 2>&1 || { cat "$TESTDIR/fsck.out" >&2; fail "fsck after recovery"; }
detach "$ID"
if dmesg_since_mark | grep -i "$(basename "$DEV")" | grep -i "shut down"; then
  fail "detach shut down a filesystem the daemon still had mounted"
fi

# --on-daemon-loss=fail: no daemon, I/O fails at once; recover makes it work.
if ! kernel_has RECOVERY_FAIL_IO; then
  expect_fail "--on-daemon-loss=fail without RECOVERY_FAIL_IO" "$UNBD" attach "$uri" -q 1 --on-daemon-loss=fail
  grep -q FAIL_IO "$STDERR" || fail "the refusal does not name FAIL_IO: $(cat "$STDERR")"
  cat "$STDERR"
  expect_no_devices
  skip_part "--on-daemon-loss=fail (no UBLK_F_USER_RECOVERY_FAIL_IO, 6.13+; the refusal was checked)"
  exit 0
fi
attach "$uri" -q 1 --on-daemon-loss=fail
kill -9 "$(device_field pid)"
wait_until 30 '[ "$(device_field state)" = fail-io ] || [ "$(device_field state)" = quiesced ]' ||
  fail "device state '$(device_field state)' after SIGKILL"
t0=$(now)
if timeout 20 dd if="$DEV" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null; then
  fail "a read succeeded with no daemon and --on-daemon-loss=fail"
fi
echo "with --on-daemon-loss=fail a read failed after $(since "$t0") s (state $(device_field state))"
"$UNBD" recover "$ID" >/dev/null || fail "recover after --on-daemon-loss=fail"
dd if="$DEV" of=/dev/null bs=4k count=1 iflag=direct status=none || fail "read after recover"
detach "$ID"
expect_no_devices
