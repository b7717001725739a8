# Shared by the VM benchmarks (tests/bench/*.sh), sourced in the guest after
# tests/functions.sh.
#
#   workload NAME FIO-ARGS...   one fio run on $target, appends
#                               "$client NAME IOPS MiB/s clat-p50-us" to $results
#   fill_device DEV             writes random data over the whole device, so
#                               reads return data, not holes
workload() {
  local name=$1; shift
  fio --name="$name" --filename="$target" --ioengine=io_uring --direct=1 \
    --time_based --runtime="$runtime" --ramp_time=1 --group_reporting \
    --output-format=json "$@" >"$TESTDIR/fio.json" || fail "fio $name on $target ($client)"
  jq -r --arg c "$client" --arg n "$name" '.jobs[0] as $j
    | (if $j.read.io_bytes > 0 then $j.read else $j.write end) as $d
    | "\($c) \($n) \($d.iops) \($d.bw_bytes / 1048576) \(($d.clat_ns.percentile["50.000000"] // 0) / 1000)"' \
    "$TESTDIR/fio.json" >>"$results"
  tail -1 "$results"
}

fill_device() {
  local size_mib off
  dd if=/dev/urandom of="$TESTDIR/chunk" bs=1M count=16 status=none
  size_mib=$(($(blockdev --getsize64 "$1") >> 20))
  for ((off = 0; off < size_mib; off += 16)); do
    dd if="$TESTDIR/chunk" of="$1" bs=1M seek=$off conv=notrunc oflag=direct status=none
  done
}
