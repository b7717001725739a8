#!/bin/bash
# The container flow of containers/README.md, for real: containers/build.sh
# makes the image, podman (crun, cgroupfs, overlay storage on a tmpfs) loads
# it and runs the sidecar -- `unbd attach -n ID URI --foreground`,
# privileged, with /dev and /run/unbd from the host and the host's PID
# namespace -- and a second container (busybox bind-mounted into the same
# image) makes a filesystem on the device and uses it.
#   1. `podman stop` detaches cleanly: the sidecar exits 0, nothing is left.
#   2. The sidecar is SIGKILLed while the consumer has the filesystem
#      mounted: the device stays quiesced, `podman start` of the same
#      container (what a restart policy does) recovers it, and the consumer
#      goes on writing and reads back what it wrote before and after.
# Prints the image size and the time of each step.
. "$(dirname "$0")/../lib.sh"
command -v podman >/dev/null || fail "podman is missing (scripts/install-deps.sh installs it)"

# scripts/test-all.sh builds the image on the host (a minute faster than in
# this emulated guest); build it here when that archive is missing or older
# than the binary under test.
image_tar=$UNBD_BUILD_DIR/containers/unbd-$("$UNBD" --version | awk '{print $2; exit}').oci.tar
if [ ! -f "$image_tar" ] || [ "$image_tar" -ot "$UNBD" ]; then
  t0=$(now)
  image_tar=$(bash "$UNBD_SOURCE_DIR/containers/build.sh" --binary "$UNBD" --output "$TESTDIR/unbd.oci.tar" \
    2>"$TESTDIR/build.err") || { cat "$TESTDIR/build.err" >&2; fail "containers/build.sh failed"; }
  grep 'containers/build.sh:' "$TESTDIR/build.err"
  echo "image built in $(since "$t0") s"
fi
echo "image archive: $image_tar, $(stat -c %s "$image_tar") bytes"

# podman as the issue found it works in this guest: crun, cgroupfs, overlay
# on a tmpfs, rlimits within this machine's hard limits.
# Its own tmpfs: podman's overlay driver refuses an overlayfs below it, and
# the guest's /tmp is the overlaid host /tmp when the tree lives under /tmp.
mkdir -p "$TESTDIR/podman"
mount -t tmpfs -o mode=0700 podman-storage "$TESTDIR/podman"
cleanup_fn "umount -l '$TESTDIR/podman'"
cat >"$TESTDIR/podman/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
EOF
cat >"$TESTDIR/podman/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$TESTDIR/podman/storage"
runroot = "$TESTDIR/podman/run"
EOF
export CONTAINERS_CONF=$TESTDIR/podman/containers.conf CONTAINERS_STORAGE_CONF=$TESTDIR/podman/storage.conf
cleanup_fn 'podman rm -a -f -t 0 >/dev/null 2>&1'

t0=$(now)
image=$(podman load -q -i "$image_tar" | sed -n 's/^Loaded image[^:]*: //p')
[ -n "$image" ] || fail "podman load named no image"
echo "podman load: $image in $(since "$t0") s"

serve_tcp memory 256M
ID=7
DEV=/dev/ublkb$ID
mkdir -p "$STATE_DIR"
sidecar_args=(--name unbd-sidecar --privileged --pid host --network host
  -v /dev:/dev -v "$STATE_DIR:/run/unbd" "$image" attach -n "$ID" "$URI" --foreground)

wait_device_live() {
  wait_until 60 '[ -b "$DEV" ] && [ "$(device_field state)" = live ]' ||
    { podman logs unbd-sidecar 2>&1 | tail -20 >&2; fail "$DEV did not become live ($1)"; }
}
# consumer NAME SCRIPT: busybox sh running SCRIPT in a privileged container
# of the same image, with $DEV as /dev/disk and $TESTDIR/shared as /shared.
mkdir -p "$TESTDIR/shared"
consumer() {
  local name=$1; shift
  podman run --name "$name" --privileged --network none -v /dev:/dev -v /bin/busybox:/bin/busybox:ro \
    -v "$TESTDIR/shared:/shared" --entrypoint /bin/busybox -e DISK="$DEV" "$image" sh -euc "$*"
}

# ---- 1. attach, use, podman stop -------------------------------------------
t0=$(now)
podman run -d "${sidecar_args[@]}" >/dev/null || fail "podman run of the sidecar failed"
wait_device_live "first start"
echo "sidecar: podman run to a live $DEV in $(since "$t0") s"
[ "$(device_field pid)" = "$(podman inspect -f '{{.State.Pid}}' unbd-sidecar)" ] ||
  fail "unbd list shows pid $(device_field pid), podman says the sidecar is $(podman inspect -f '{{.State.Pid}}' unbd-sidecar)"

t0=$(now)
consumer mkfs-use 'mkdir -p /mnt
  busybox mke2fs -q -b 4096 "$DISK" >/dev/null
  mount -t ext2 "$DISK" /mnt
  dd if=/dev/urandom of=/mnt/before bs=64k count=64 2>/dev/null
  sha256sum /mnt/before | cut -d" " -f1 >/shared/before.sha
  umount /mnt' || fail "the consumer could not make and use a filesystem on $DEV"
echo "consumer: mke2fs, mount, 4 MiB written, umount in $(since "$t0") s"
podman rm mkfs-use >/dev/null

t0=$(now)
podman stop -t 60 unbd-sidecar >/dev/null || fail "podman stop failed"
rc=$(podman inspect -f '{{.State.ExitCode}}' unbd-sidecar)
[ "$rc" = 0 ] || { podman logs unbd-sidecar 2>&1 | tail -20 >&2; fail "the sidecar exited with $rc on podman stop"; }
expect_no_devices
echo "podman stop: clean detach in $(since "$t0") s, nothing left behind"

# ---- 2. SIGKILL under a mounted filesystem; podman start recovers ----------
podman rm unbd-sidecar >/dev/null
podman run -d "${sidecar_args[@]}" >/dev/null || fail "podman run of the sidecar failed (second time)"
wait_device_live "second start"
# The consumer keeps the filesystem mounted across the kill: it writes,
# syncs, says so, waits for the test, then writes again and checks both.
rm -f "$TESTDIR/shared/"{mounted,go,done}
consumer use-across-kill 'mkdir -p /mnt
  mount -t ext2 "$DISK" /mnt
  [ "$(sha256sum /mnt/before | cut -d" " -f1)" = "$(cat /shared/before.sha)" ]
  dd if=/dev/urandom of=/mnt/during bs=64k count=32 2>/dev/null; sync
  sha256sum /mnt/during | cut -d" " -f1 >/shared/during.sha
  touch /shared/mounted
  while [ ! -e /shared/go ]; do sleep 0.2; done
  dd if=/dev/urandom of=/mnt/after bs=64k count=32 conv=fsync 2>/dev/null
  sha256sum /mnt/after | cut -d" " -f1 >/shared/after.sha
  echo 3 >/proc/sys/vm/drop_caches
  [ "$(sha256sum /mnt/during | cut -d" " -f1)" = "$(cat /shared/during.sha)" ]
  umount /mnt
  touch /shared/done' >"$TESTDIR/consumer.out" 2>&1 &
consumer_pid=$!
wait_until 120 '[ -e "$TESTDIR/shared/mounted" ]' ||
  { cat "$TESTDIR/consumer.out" >&2; fail "the consumer did not mount and write"; }

pid=$(device_field pid)
t0=$(now)
podman kill -s KILL unbd-sidecar >/dev/null || fail "podman kill failed"
wait_until 30 '! kill -0 '"$pid"' 2>/dev/null' || fail "the daemon ($pid) survived podman kill"
wait_until 30 '[ "$(device_field state)" = quiesced ]' ||
  fail "after SIGKILL the device is '$(device_field state)', not quiesced"
[ -b "$DEV" ] || fail "$DEV vanished with its daemon"
touch "$TESTDIR/shared/go"  # the consumer's next writes wait in the kernel
t1=$(now)
podman start unbd-sidecar >/dev/null || fail "podman start (the restart) failed"
wait_device_live "restart after SIGKILL"
echo "podman kill -s KILL: device quiesced; podman start to live in $(since "$t1") s ($(since "$t0") s since the kill)"
[ "$(device_field pid)" != "$pid" ] || fail "unbd list still shows the killed daemon's pid"
# Into a variable first: with pipefail, `podman logs | grep -q` fails when
# grep exits at its match while podman still writes.
sidecar_log=$(podman logs unbd-sidecar 2>&1)
grep -q 'waiting for a daemon: recovering it' <<<"$sidecar_log" ||
  { tail -20 <<<"$sidecar_log" >&2; fail "the restarted sidecar did not say it recovered device $ID"; }

wait $consumer_pid || { cat "$TESTDIR/consumer.out" >&2; fail "the consumer failed across the daemon kill"; }
[ -e "$TESTDIR/shared/done" ] || fail "the consumer did not finish"
echo "consumer: the filesystem stayed mounted across SIGKILL + restart; before/during/after data verified"

t0=$(now)
podman stop -t 60 unbd-sidecar >/dev/null || fail "podman stop failed (after recovery)"
[ "$(podman inspect -f '{{.State.ExitCode}}' unbd-sidecar)" = 0 ] || fail "the recovered sidecar did not exit 0"
expect_no_devices
echo "podman stop after recovery: clean detach in $(since "$t0") s"
echo "PASS: container sidecar: build, run, use, stop, SIGKILL + restart"
