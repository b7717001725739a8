#!/bin/bash
# The main job, end to end: serve a 1 GiB nbdkit memory export on a Unix
# socket, attach it with `unbd attach`, make an ext4 filesystem on it, mount
# it, write and read back a file, show `unbd list`, unmount, detach.
# On a kernel without ublk it builds on the host and runs the same steps
# inside the project's test VM (tests/vm/run), and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
say() { printf '\n$ %s\n' "$*"; }

if [ "${1:-}" != --in-vm ]; then
  bash scripts/install-deps.sh
  cmake --preset default >/dev/null && cmake --build --preset default -j 2 --target unbd >/dev/null
  if [ ! -e /dev/ublk-control ] && ! modprobe ublk_drv 2>/dev/null; then
    echo "demo: this kernel ($(uname -r)) has no ublk; running the demo inside the test VM (tests/vm/run)"
    exec tests/vm/run -- bash "$root/scripts/demo.sh" --in-vm
  fi
fi

unbd=$root/build/default/unbd
work=$(mktemp -d /tmp/unbd-demo.XXXXXX)
dev=
cleanup() {
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [ -n "$dev" ] && [ -e "$dev" ] && "$unbd" detach "$dev" 2>/dev/null
  [ -f "$work/nbdkit.pid" ] && kill "$(cat "$work/nbdkit.pid")" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

say nbdkit -U "$work/sock" -P "$work/nbdkit.pid" memory 1G
nbdkit -U "$work/sock" -P "$work/nbdkit.pid" memory 1G
for _ in $(seq 100); do [ -S "$work/sock" ] && break; sleep 0.1; done

uri="nbd+unix:///?socket=$work/sock"
say unbd attach "$uri"
dev=$("$unbd" attach "$uri")
echo "$dev"

say mkfs.ext4 -q "$dev"
mkfs.ext4 -q "$dev"
mkdir "$work/mnt"
say mount "$dev" "$work/mnt"
mount "$dev" "$work/mnt"

say "write 64 MiB of random data to a file, drop caches, read it back"
head -c 64M /dev/urandom >"$work/data"
cp "$work/data" "$work/mnt/data"
sync
echo 3 >/proc/sys/vm/drop_caches
cmp "$work/data" "$work/mnt/data" && echo "read back: identical ($(sha256sum <"$work/data" | cut -c1-16)...)"
df -h "$work/mnt" | tail -n 1

say unbd list
"$unbd" list

say umount "$work/mnt"
umount "$work/mnt"
say unbd detach "$dev"
"$unbd" detach "$dev"
[ ! -e "$dev" ] && echo "$dev is gone"
dev=
echo "demo: OK"
