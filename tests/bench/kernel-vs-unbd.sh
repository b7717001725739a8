#!/bin/bash
# unbd against the kernel's own NBD client, in one boot of the test VM.
#
#   tests/bench/kernel-vs-unbd.sh            (on the host: boots the VM)
#
# One nbdkit memory export in the guest; the same fio workloads -- 4K
# randread and randwrite at QD 32, 1M sequential read and write at QD 8,
# 4K randread and randwrite at QD 1 (latency: clat p50) -- direct I/O,
# io_uring, time based, through three clients:
#   unbd-zc    unbd attach --zero-copy=auto (must really be zero copy)
#   unbd-copy  unbd attach --zero-copy=off
#   kernel     nbd-client ... /dev/nbd0 -C QUEUES (same number of connections)
# and the time from `unbd attach` / `nbd-client` to a device that answers a
# read. Every round runs every workload on each client in turn, so drift
# hits all alike; the table gives the mean over the rounds, its spread
# (half the range, in % of the mean) and the ratio to the kernel client
# (mean of the per-round ratios), then each target of issue 10, met or not.
# After each unbd workload a line in the log says how well its queue loops
# batched replies (requests per wait, waits held: `unbd stats`).
#
# The clock: benchmarks boot the guest with an instruction-counted clock
# (UNBD_VM_ICOUNT=4, see tests/vm/run): every guest instruction advances
# guest time by 16 ns, whatever the host is doing, so IOPS and latencies are
# "per instruction the whole stack spends" and repeat between boots. Plain
# host time (UNBD_VM_ICOUNT=off) swings up to 3x between boots of the same
# binary: use it only for debugging.
# How well it repeats (same binary, BENCH_ROUNDS=3 BENCH_RUNTIME=4, two
# boots): see DESIGN.md "Performance", where the figures are kept.
#
# Environment:
#   UNBD              the unbd binary (default build/default/unbd)
#   BENCH_RUNTIME     seconds per workload (3)
#   BENCH_QUEUES      queues = connections for every client (2)
#   BENCH_ROUNDS      rounds of every workload on every client (3)
#   BENCH_ATTACHES    attach timings per client per round (3)
#   BENCH_SIZE        export size (256M)
#   BENCH_TRANSPORT   tcp or unix (tcp)
#   BENCH_OUT         also write the table to this file (on the host)
#   BENCH_EXTRA       more unbd clients, ';'-separated "NAME|ENV|ATTACH-ARGS"
#                     entries (ENV: space-separated VAR=VALUE for the daemon;
#                     UNBD=PATH runs another build, e.g. the commit before a
#                     change, side by side), e.g.
#                     "zc-trust||--zero-copy=auto --durability=trust-server"
#   UNBD_VM_ICOUNT    the guest clock (4: instruction counted; off: host time)
#   UNBD_VM_*         see tests/vm/run (memory, timeout, ...)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

if [ "${UNBD_VM_GUEST:-0}" != 1 ]; then
  BENCH_ROUNDS=${BENCH_ROUNDS:-3} BENCH_RUNTIME=${BENCH_RUNTIME:-3} UNBD_VM_TIMEOUT=${UNBD_VM_TIMEOUT:-2400}
  bench_host kernel-vs-unbd
  export UNBD_BENCH_ATTACHES=${BENCH_ATTACHES:-3} UNBD_BENCH_EXTRA=${BENCH_EXTRA:-}
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
export UNBD_STATE_DIR=$TESTDIR/state

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

# Every device stays attached for the whole run.
declare -A dev_of id_of
clients=()
client_bin() { # ENV-WORDS: the unbd binary a client runs (UNBD=PATH among them, else $UNBD)
  local bin=$UNBD w
  for w in $1; do [[ $w == UNBD=* ]] && bin=${w#UNBD=}; done
  echo "$bin"
}
attach_client() { # NAME ENV ATTACH-ARGS: attaches and checks the zero-copy mode
  local client=$1 env_words=$2 json id mode bin
  bin=$(client_bin "$env_words")
  # shellcheck disable=SC2086
  json=$(env $env_words "$bin" attach --json "$uri" -q "$queues" $3) || fail "unbd attach ($client)"
  id=$(jq -r .id <<<"$json") mode=$(jq -r .zero_copy <<<"$json")
  dev_of[$client]=$(jq -r .dev <<<"$json")
  id_of[$client]=$id
  clients+=("$client")
  cleanup_fn "'$UNBD' detach $id 2>/dev/null"
  [ "$(jq -r .queues <<<"$json")" = "$queues" ] || fail "$client: not $queues queues: $json"
  case " $3 " in
  *" --zero-copy=auto "*) [[ $mode != off/* ]] || fail "$client: --zero-copy=auto fell back to copy mode ($mode)" ;;
  *" --zero-copy=off "*) [[ $mode == off/* ]] || fail "$client: --zero-copy=off is not copy mode ($mode)" ;;
  esac
  echo "== $client: ${dev_of[$client]}, zero_copy=$mode, durability=$(jq -r .durability <<<"$json"), queues=$queues, depth=$(jq -r .depth <<<"$json") $env_words"
}
attach_client unbd-zc "" "--zero-copy=auto"
attach_client unbd-copy "" "--zero-copy=off"
IFS=';' read -r -a extra <<<"${UNBD_BENCH_EXTRA:-}"
for e in "${extra[@]}"; do
  [ -n "$e" ] || continue
  IFS='|' read -r name env_words args <<<"$e"
  attach_client "$name" "$env_words" "$args"
done

nbd_connect() { # DEV: nbd-client, then wait until the device has its size
  nbd-client "${nbd_client_target[@]}" "$1" -C "$queues" -b 512 >"$TESTDIR/nbd-client.out" 2>&1 ||
    { cat "$TESTDIR/nbd-client.out"; fail "nbd-client $1"; }
  for _ in $(seq 500); do [ "$(blockdev --getsize64 "$1" 2>/dev/null || echo 0)" -gt 0 ] && return; sleep 0.01; done
  fail "nbd-client: $1 has no size"
}
nbd_connect /dev/nbd0
cleanup_fn "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
dev_of[kernel]=/dev/nbd0
echo "== kernel: /dev/nbd0, nbd-client -C $queues ($(cat /sys/block/nbd0/queue/nr_requests 2>/dev/null) requests/queue)"

# Fill the export once so reads return data, not holes.
fill_device "${dev_of[unbd-zc]}"

wait_counts() { # ID: "REQUESTS WAITS HELD" so far, from unbd stats
  "$UNBD" stats --json "$1" | jq -r '"\(.io.reads + .io.writes) \(.io.waits) \(.io.held_waits)"'
}
# How well a unbd client's queue loop batched replies in one workload:
# requests per wait, and the share of waits that held their wake-up
# (uring/wake_batch.h). Printed, not tabled.
batching_line() { # CLIENT WORKLOAD BEFORE AFTER
  local r0 w0 h0 r1 w1 h1
  read -r r0 w0 h0 <<<"$3"
  read -r r1 w1 h1 <<<"$4"
  awk -v c="$1" -v n="$2" -v r=$((r1 - r0)) -v w=$((w1 - w0)) -v h=$((h1 - h0)) \
    'BEGIN { if (w > 0) printf "   %s %s: %.2f requests per wait, %.0f%% of %d waits held\n", c, n, r / w, 100 * h / w, w }'
}
each_client() {
  local before
  for client in "${clients[@]}" kernel; do
    target=${dev_of[$client]}
    [ "$client" = kernel ] || before=$(wait_counts "${id_of[$client]}")
    workload "$@"
    [ "$client" = kernel ] || batching_line "$client" "$1" "$before" "$(wait_counts "${id_of[$client]}")"
  done
}

# Attach time: from the command's start to the first 4K direct read of the
# new device returning (the device is usable), in guest time. Each side runs
# exactly two programs in that window -- its attach tool and dd -- and the
# script itself only bash builtins: starting a program costs this guest
# 60-90 ms (/bin/true, 2026-12-04) and jq seconds, so two jq runs to pick the
# device out of `attach --json` once made unbd's attach look 9x slower than
# it is. BENCH_EXTRA's clients are timed too, side by side.
first_read() { dd if="$1" of=/dev/null bs=4k count=1 iflag=direct status=none; }
attach_record() { # CLIENT T0: one attach timing, T0 from $EPOCHREALTIME
  echo "$round $1 attach 0 0 $(awk -v a="$2" -v b="$3" 'BEGIN { print (b - a) * 1e6 }')" >>"$results"
}
attach_time() { # CLIENT ENV-WORDS ATTACH-ARGS: one unbd timing, then detach
  local bin json dev id t0 t1
  bin=$(client_bin "$2")
  t0=$EPOCHREALTIME
  # The environment is set in the substitution's subshell: no `env` program.
  # shellcheck disable=SC2086
  json=$([ -z "$2" ] || export $2; "$bin" attach --json "$uri" -q "$queues" $3) || fail "unbd attach ($1)"
  [[ $json =~ \"dev\":\ *\"(/dev/ublkb([0-9]+))\" ]] || fail "attach --json has no dev: $json"
  dev=${BASH_REMATCH[1]} id=${BASH_REMATCH[2]}
  first_read "$dev" || fail "first read of $dev"
  t1=$EPOCHREALTIME
  attach_record "$1" "$t0" "$t1"
  "$bin" detach "$id" || fail "detach $id"
}
attach_times() {
  local t0 t1 i size n e name env_words args
  for ((i = 0; i < UNBD_BENCH_ATTACHES; i++)); do
    attach_time unbd-zc "" --zero-copy=auto
    attach_time unbd-copy "" --zero-copy=off
    for e in "${extra[@]}"; do  # side by side: BENCH_EXTRA's clients too
      [ -n "$e" ] || continue
      IFS='|' read -r name env_words args <<<"$e"
      attach_time "$name" "$env_words" "$args"
    done
    client=kernel
    t0=$EPOCHREALTIME
    nbd-client "${nbd_client_target[@]}" /dev/nbd1 -C "$queues" -b 512 >"$TESTDIR/nbd-client.out" 2>&1 ||
      { cat "$TESTDIR/nbd-client.out"; fail "nbd-client /dev/nbd1"; }
    # nbd-client may return before the kernel has the size: wait, builtins only.
    for ((size = 0, n = 0; size == 0; n++)); do
      ((n < 100000)) || fail "nbd-client: /dev/nbd1 has no size"
      read -r size </sys/block/nbd1/size || size=0
    done
    first_read /dev/nbd1 || fail "first read of /dev/nbd1"
    t1=$EPOCHREALTIME
    attach_record kernel "$t0" "$t1"
    nbd-client -d /dev/nbd1 >/dev/null 2>&1 || fail "nbd-client -d /dev/nbd1"
  done
}

for ((round = 1; round <= UNBD_BENCH_ROUNDS; round++)); do
  each_client 4k-randread --rw=randread --bs=4k --iodepth=32
  each_client 4k-randwrite --rw=randwrite --bs=4k --iodepth=32
  each_client 1m-read --rw=read --bs=1M --iodepth=8
  each_client 1m-write --rw=write --bs=1M --iodepth=8
  each_client 4k-randread-qd1 --rw=randread --bs=4k --iodepth=1
  each_client 4k-randwrite-qd1 --rw=randwrite --bs=4k --iodepth=1
  attach_times
done

clock="host time (UNBD_VM_ICOUNT=off): ratios only, they swing between boots"
[ "${UNBD_VM_ICOUNT:-off}" = off ] ||
  clock="instruction-counted guest clock (icount shift=$UNBD_VM_ICOUNT: 1 s = $((1000000000 >> UNBD_VM_ICOUNT)) guest instructions)"
echo
echo "fio $runtime s per workload x $UNBD_BENCH_ROUNDS rounds, direct=1, io_uring, $queues queues/connections, nbdkit memory $UNBD_BENCH_SIZE over $UNBD_BENCH_TRANSPORT, in the TCG test VM, transparent huge pages: $thp"
echo "clock: $clock"
bench_table "$results"
