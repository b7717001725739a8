#!/bin/bash
# `unbd detach --all` takes away every device: one over Unix in zero copy,
# one over TCP in copy mode with fio running on it, and one whose daemon was
# killed with SIGKILL (detach must work without it). Afterwards no
# /dev/ublkb*, /dev/ublkc*, state files, daemons, and `unbd list` is empty.
. "$(dirname "$0")/../lib.sh"

serve_unix a memory 64M
attach "$URI" -q 2 --zero-copy=auto
expect_zero_copy auto
pids=($(jq -r .pid <<<"$ATTACH_JSON"))

serve_tcp memory 64M
attach "$URI" -q 2 --zero-copy=off
expect_zero_copy off
pids+=($(jq -r .pid <<<"$ATTACH_JSON"))
fio --name=busy --filename="$DEV" --ioengine=io_uring --direct=1 --rw=randwrite --bs=64k \
  --iodepth=32 --time_based --runtime=120 >"$TESTDIR/fio.out" 2>&1 &
fio_pid=$!
cleanup_fn "kill $fio_pid 2>/dev/null"

serve_unix c memory 64M
attach "$URI"
expect_zero_copy auto
dead=$(jq -r .pid <<<"$ATTACH_JSON") dead_id=$ID
pids+=("$dead")
kill -9 "$dead"
for _ in $(seq 50); do kill -0 "$dead" 2>/dev/null || break; sleep 0.1; done

[ "$("$UNBD" list --json | jq length)" = 3 ] || fail "unbd list does not show 3 devices: $("$UNBD" list)"
"$UNBD" list
sleep 1
timeout 120 "$UNBD" detach --all || fail "unbd detach --all failed or hung"
# The killed daemon's log may stay, for a post-mortem; nothing else.
expect_no_devices "$dead_id.log"
[ "$("$UNBD" list --json | jq length)" = 0 ] || fail "unbd list is not empty after detach --all"
for p in "${pids[@]}"; do
  if kill -0 "$p" 2>/dev/null; then fail "daemon $p still running after detach --all"; fi
done
for _ in $(seq 300); do kill -0 $fio_pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $fio_pid 2>/dev/null; then fail "fio still running 30 s after detach --all"; fi
echo "detach --all: 3 devices (live, busy, dead daemon) gone"
