# Shared by the VM benchmarks (tests/bench/*.sh), sourced at their top.
#
# On the host:
#   bench_host NAME             checks $UNBD, exports the UNBD_BENCH_* and
#                               UNBD_VM_* defaults (BENCH_* from the caller)
# In the guest:
#   bench_guest                 sources tests/functions.sh, sets runtime,
#                               queues and an empty $results, and the
#                               guest's transparent huge pages to
#                               $UNBD_BENCH_THP (below); $thp says which
#
#   workload NAME FIO-ARGS...   one fio run on $target, appends
#                               "$round $client NAME IOPS MiB/s clat-p50-us
#                               lat-p50-us" to $results (lat: submission
#                               included, where nbd.ko sends the request)
#   bench_table RESULTS         kernel-vs-unbd's table (kernel_table.py)
#   fill_device DEV             writes random data over the whole device, so
#                               reads return data, not holes
workload() {
  local name=$1; shift
  fio --name="$name" --filename="$target" --ioengine=io_uring --direct=1 \
    --time_based --runtime="$runtime" --ramp_time=1 --group_reporting --lat_percentiles=1 \
    --output-format=json "$@" >"$TESTDIR/fio.json" || fail "fio $name on $target ($client)"
  jq -r --arg r "${round:-1}" --arg c "$client" --arg n "$name" '.jobs[0] as $j
    | (if $j.read.io_bytes > 0 then $j.read else $j.write end) as $d
    | "\($r) \($c) \($n) \($d.iops) \($d.bw_bytes / 1048576) \(($d.clat_ns.percentile["50.000000"] // 0) / 1000) \(($d.lat_ns.percentile["50.000000"] // 0) / 1000)"' \
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

bench_table() { python3 "$source_dir/tests/bench/kernel_table.py" "$1"; }

# Benchmarks count guest time in instructions unless told otherwise (see
# tests/vm/run: UNBD_VM_ICOUNT).
bench_host() {
  : "${UNBD:=$source_dir/build/default/unbd}"
  UNBD=$(realpath "$UNBD")
  [ -x "$UNBD" ] || { echo "$1: $UNBD not built" >&2; exit 1; }
  export UNBD UNBD_VM_MEM=${UNBD_VM_MEM:-2G} UNBD_VM_TIMEOUT=${UNBD_VM_TIMEOUT:-900}
  export UNBD_VM_ICOUNT=${UNBD_VM_ICOUNT:-4}
  export UNBD_BENCH_RUNTIME=${BENCH_RUNTIME:-10} UNBD_BENCH_QUEUES=${BENCH_QUEUES:-2}
  export UNBD_BENCH_ROUNDS=${BENCH_ROUNDS:-1}
  export UNBD_BENCH_SIZE=${BENCH_SIZE:-256M} UNBD_BENCH_TRANSPORT=${BENCH_TRANSPORT:-tcp}
  export UNBD_BENCH_THP=${BENCH_THP:-madvise}
}

bench_guest() {
  export UNBD_SOURCE_DIR=$source_dir UNBD_BUILD_DIR=$(dirname "$UNBD")
  . "$source_dir/tests/functions.sh"
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
  runtime=$UNBD_BENCH_RUNTIME queues=$UNBD_BENCH_QUEUES
  results=$TESTDIR/results
  : >"$results"
  # With THP "always" (Debian's default), khugepaged collapses the nbdkit
  # memory export into huge pages in the background for the first ~10 s
  # after it is filled: 120 collapses, 5-8% of all guest samples in
  # profile-guest.sh, landing on whichever client runs then. "madvise"
  # leaves the server's memory alone; BENCH_THP=keep leaves the setting.
  local knob=/sys/kernel/mm/transparent_hugepage/enabled
  if [ "$UNBD_BENCH_THP" != keep ] && [ -w "$knob" ]; then
    echo "$UNBD_BENCH_THP" >"$knob" || fail "cannot set $knob to $UNBD_BENCH_THP"
  fi
  thp=$(sed 's/.*\[\(.*\)\].*/\1/' "$knob" 2>/dev/null || echo unknown)
}
