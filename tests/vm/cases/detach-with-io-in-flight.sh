#!/bin/bash
# `unbd detach` while fio keeps 32 requests in flight on both queues, in zero
# copy and copy mode: detach returns within a bound, fio ends (its I/O fails
# once the device is gone -- it must not hang), and nothing is left behind:
# no /dev/ublkb*, /dev/ublkc*, state file or daemon. The server stays usable.
. "$(dirname "$0")/../lib.sh"

for zc in auto off; do
  serve_unix "mem-$zc" memory 128M
  attach "$URI" -q 2 --zero-copy=$zc
  expect_zero_copy $zc
  pid=$(jq -r .pid <<<"$ATTACH_JSON")
  fio --name=inflight --filename="$DEV" --ioengine=io_uring --direct=1 --rw=randrw \
    --bssplit=4k/50:128k/50 --iodepth=32 --numjobs=2 --cpus_allowed=0-1 \
    --cpus_allowed_policy=split --time_based --runtime=120 \
    >"$TESTDIR/fio-$zc.out" 2>&1 &
  fio_pid=$!
  cleanup_fn "kill $fio_pid 2>/dev/null"
  # Wait until requests are really in flight on the device.
  busy=0
  for _ in $(seq 100); do
    read -r r w <"/sys/block/$(basename "$DEV")/inflight"
    if [ $((r + w)) -gt 0 ]; then busy=1; break; fi
    sleep 0.1
  done
  [ $busy = 1 ] || fail "fio never had I/O in flight on $DEV ($zc)"
  sleep 1

  timeout 60 "$UNBD" detach "$ID" || fail "unbd detach with I/O in flight failed or hung ($zc)"
  for _ in $(seq 300); do kill -0 $fio_pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $fio_pid 2>/dev/null; then fail "fio still running 30 s after detach ($zc)"; fi
  wait $fio_pid || true
  grep -q 'err=' "$TESTDIR/fio-$zc.out" || fail "fio output has no status ($zc)"
  expect_no_devices
  if kill -0 "$pid" 2>/dev/null; then fail "daemon $pid still running after detach ($zc)"; fi
  nbdsh -u "$URI" -c 'h.pread(4096, 0)' || fail "the server is unusable after detach ($zc)"
  echo "zero copy $zc ($ZC): detach with I/O in flight left nothing behind"
done
