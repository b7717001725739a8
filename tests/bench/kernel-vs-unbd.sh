#!/bin/bash
# unbd against the kernel's own NBD client, in one boot of the test VM.
#
#   tests/bench/kernel-vs-unbd.sh            (on the host: boots the VM)
#
# One nbdkit memory export in the guest; the same fio workloads -- 4K
# randread and randwrite at QD 32, 1M sequential read and write at QD 8,
# direct I/O, io_uring, time based -- through three clients:
#   unbd-zc    unbd attach --zero-copy=auto (must really be zero copy)
#   unbd-copy  unbd attach --zero-copy=off
#   kernel     nbd-client ... /dev/nbd0 -C QUEUES (same number of connections)
# and a table of IOPS, MiB/s and the ratio to the kernel client.
#
# Environment:
#   UNBD              the unbd binary (default build/default/unbd)
#   BENCH_RUNTIME     seconds per workload (10)
#   BENCH_QUEUES      queues = connections for every client (2)
#   BENCH_ROUNDS      rounds of every workload on every client, averaged (1)
#   BENCH_SIZE        export size (256M)
#   BENCH_TRANSPORT   tcp or unix (tcp)
#   BENCH_OUT         also write the table to this file (on the host)
#   UNBD_VM_*         see tests/vm/run (memory, timeout, ...)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

if [ "${UNBD_VM_GUEST:-0}" != 1 ]; then
  bench_host kernel-vs-unbd
  [ -n "${BENCH_OUT:-}" ] || exec "$source_dir/tests/vm/run" -- bash "$here/kernel-vs-unbd.sh"
  # The guest's writes stay in the guest: keep the table from its output.
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  rc=0
  "$source_dir/tests/vm/run" -- bash "$here/kernel-vs-unbd.sh" | tee "$log" || rc=$?
  sed -n '/^fio .* per workload/,$p' "$log" >"$BENCH_OUT"
  exit $rc
fi

# ---- in the guest ----
bench_guest

if [ "$UNBD_BENCH_TRANSPORT" = unix ]; then
  sock=$TESTDIR/bench.sock
  start_nbdkit -P "$TESTDIR/nbdkit.pid" -U "$sock" memory "$UNBD_BENCH_SIZE"
  uri="nbd+unix:///?socket=$sock"
  nbd_client_target=(-unix "$sock")
else
  port=$(pick_port)
  start_nbdkit -P "$TESTDIR/nbdkit.pid" -i 127.0.0.1 -p "$port" memory "$UNBD_BENCH_SIZE"
  uri="nbd://127.0.0.1:$port/"
  nbd_client_target=(127.0.0.1 "$port")
fi

# The three devices stay attached together; every workload runs on each
# client in turn, BENCH_ROUNDS times, so drift on a busy host hits all alike.
declare -A dev_of
for zc in auto off; do
  client=unbd-copy
  [ $zc = auto ] && client=unbd-zc
  json=$("$UNBD" attach --json "$uri" -q "$queues" --zero-copy=$zc) || fail "unbd attach ($zc)"
  id=$(jq -r .id <<<"$json") mode=$(jq -r .zero_copy <<<"$json")
  dev_of[$client]=$(jq -r .dev <<<"$json")
  cleanup_fn "'$UNBD' detach $id 2>/dev/null"
  [ "$(jq -r .queues <<<"$json")" = "$queues" ] || fail "$client: not $queues queues: $json"
  case $zc in
  auto) [[ $mode != off/* ]] || fail "--zero-copy=auto fell back to copy mode ($mode)" ;;
  off) [[ $mode == off/* ]] || fail "--zero-copy=off is not copy mode ($mode)" ;;
  esac
  echo "== $client: ${dev_of[$client]}, zero_copy=$mode, queues=$queues, depth=$(jq -r .depth <<<"$json")"
done

nbd-client "${nbd_client_target[@]}" /dev/nbd0 -C "$queues" -b 512 >"$TESTDIR/nbd-client.out" 2>&1 ||
  { cat "$TESTDIR/nbd-client.out"; fail "nbd-client"; }
cleanup_fn "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
for _ in $(seq 50); do [ "$(blockdev --getsize64 /dev/nbd0 2>/dev/null || echo 0)" -gt 0 ] && break; sleep 0.1; done
dev_of[kernel]=/dev/nbd0
echo "== kernel: /dev/nbd0, nbd-client -C $queues ($(cat /sys/block/nbd0/queue/nr_requests 2>/dev/null) requests/queue)"

# Fill the export once so reads return data, not holes.
fill_device "${dev_of[unbd-zc]}"

each_client() {
  for client in unbd-zc unbd-copy kernel; do
    target=${dev_of[$client]}
    workload "$@"
  done
}
for ((round = 1; round <= ${UNBD_BENCH_ROUNDS:-1}; round++)); do
  each_client 4k-randread --rw=randread --bs=4k --iodepth=32
  each_client 4k-randwrite --rw=randwrite --bs=4k --iodepth=32
  each_client 1m-read --rw=read --bs=1M --iodepth=8
  each_client 1m-write --rw=write --bs=1M --iodepth=8
done

table() {
  echo "fio $runtime s per workload x ${UNBD_BENCH_ROUNDS:-1} round(s) (mean), direct=1, io_uring, $queues queues/connections, nbdkit memory $UNBD_BENCH_SIZE over $UNBD_BENCH_TRANSPORT, in the TCG test VM"
  awk -v r="${UNBD_BENCH_ROUNDS:-1}" '
    { iops[$1, $2] += $3 / r; mibs[$1, $2] += $4 / r; if (!($2 in seen)) { seen[$2] = 1; order[n++] = $2 } }
    END {
      printf "%-13s %-10s %10s %9s %9s\n", "workload", "client", "IOPS", "MiB/s", "vs kernel"
      split("unbd-zc unbd-copy kernel", clients, " ")
      for (i = 0; i < n; i++) {
        w = order[i]; k = iops["kernel", w]
        for (c = 1; c <= 3; c++) {
          cl = clients[c]
          ratio = k > 0 ? sprintf("%.2fx", iops[cl, w] / k) : "-"
          printf "%-13s %-10s %10.0f %9.1f %9s\n", w, cl, iops[cl, w], mibs[cl, w], ratio
        }
      }
    }' "$results"
}
echo
table
