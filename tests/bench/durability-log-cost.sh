#!/bin/bash
# What the durability log (issue 8) costs: the same device with
# --durability=replay (every write's data copied into the log by an io_uring
# WRITE_FIXED while it is on the wire) and with --durability=trust-server
# (no log), in zero-copy and copy mode, in one boot of the test VM.
#
#   tests/bench/durability-log-cost.sh      (on the host: boots the VM)
#
# One nbdkit memory export over TCP loopback; four devices attached at once
# (zc+replay, zc+trust, copy+replay, copy+trust); 4K randwrite QD32 and 1M
# write QD8, direct, io_uring; every workload runs on each device in turn,
# BENCH_ROUNDS times, so drift hits all alike. The table gives IOPS and the
# ratio replay / trust-server per mode.
#
# Environment: UNBD, BENCH_RUNTIME (10), BENCH_ROUNDS (3), BENCH_QUEUES (2),
# BENCH_SIZE (256M), UNBD_VM_* (see tests/vm/run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

if [ "${UNBD_VM_GUEST:-0}" != 1 ]; then
  BENCH_ROUNDS=${BENCH_ROUNDS:-3} UNBD_VM_TIMEOUT=${UNBD_VM_TIMEOUT:-1500}
  bench_host durability-log-cost
  exec "$source_dir/tests/vm/run" -- bash "$here/durability-log-cost.sh"
fi

# ---- in the guest ----
bench_guest
export UNBD_STATE_DIR=$TESTDIR/state

port=$(pick_port)
start_nbdkit -P "$TESTDIR/nbdkit.pid" -i 127.0.0.1 -p "$port" memory "$UNBD_BENCH_SIZE"
uri="nbd://127.0.0.1:$port/"

declare -A dev_of
clients=()
for zc in auto off; do
  for durability in replay trust-server; do
    client=$([ $zc = auto ] && echo zc || echo copy)-$durability
    json=$("$UNBD" attach --json "$uri" -q "$queues" --zero-copy=$zc --durability=$durability) ||
      fail "unbd attach ($client)"
    id=$(jq -r .id <<<"$json")
    cleanup_fn "'$UNBD' detach $id 2>/dev/null"
    [ "$(jq -r .durability <<<"$json")" = "$durability" ] || fail "$client: durability is not $durability: $json"
    dev_of[$client]=$(jq -r .dev <<<"$json")
    clients+=("$client")
    echo "== $client: ${dev_of[$client]}, zero_copy=$(jq -r .zero_copy <<<"$json")"
  done
done

for ((round = 1; round <= UNBD_BENCH_ROUNDS; round++)); do
  for w in "4k-randwrite --rw=randwrite --bs=4k --iodepth=32" "1m-write --rw=write --bs=1M --iodepth=8"; do
    for client in "${clients[@]}"; do
      target=${dev_of[$client]}
      # shellcheck disable=SC2086
      workload $w
    done
  done
done

echo
echo "fio $runtime s per workload x $UNBD_BENCH_ROUNDS rounds (mean, min-max of IOPS), direct=1, io_uring, $queues queues, nbdkit memory over TCP, in the TCG test VM, transparent huge pages: $thp, guest clock: icount ${UNBD_VM_ICOUNT:-off}"
awk -v r="$UNBD_BENCH_ROUNDS" '
  { k = $2 SUBSEP $3; sum[k] += $4; if (!(k in lo) || $4 < lo[k]) lo[k] = $4; if ($4 > hi[k]) hi[k] = $4
    if (!($3 in seen)) { seen[$3] = 1; order[n++] = $3 } }
  END {
    printf "%-13s %-6s %22s %22s %16s\n", "workload", "mode", "replay IOPS", "trust-server IOPS", "replay / trust"
    for (i = 0; i < n; i++) {
      w = order[i]
      for (m = 0; m < 2; m++) {
        mode = m == 0 ? "zc" : "copy"; a = mode SUBSEP w; a = mode "-replay" SUBSEP w; b = mode "-trust-server" SUBSEP w
        printf "%-13s %-6s %10.0f (%4.0f-%4.0f) %10.0f (%4.0f-%4.0f) %15.2fx\n", w, mode,
          sum[a] / r, lo[a], hi[a], sum[b] / r, lo[b], hi[b], (sum[b] > 0 ? sum[a] / sum[b] : 0)
      }
    }
  }' "$results"
