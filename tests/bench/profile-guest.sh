#!/bin/bash
# Where the CPU goes for one fio workload through one unbd device, in the
# test VM: `perf record -a -e cpu-clock` (the only event TCG has) over the
# whole guest -- fio, the kernel, the unbd daemon, nbdkit -- then the top
# symbols, and the same split by process.
#
#   tests/bench/profile-guest.sh [UNBD-ATTACH-ARGS...]      (on the host)
#   e.g. tests/bench/profile-guest.sh --zero-copy=auto --durability=trust-server
#
# Environment: PROFILE_FIO (fio arguments, default 4K randwrite QD32),
# PROFILE_TOP (symbols shown, 40), BENCH_RUNTIME (10), BENCH_QUEUES (2),
# UNBD, UNBD_VM_* (see tests/vm/run; the guest clock is instruction counted
# as in every benchmark). PROFILE_KERNEL=1 profiles nbd-client's /dev/nbd0
# instead of unbd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

if [ "${UNBD_VM_GUEST:-0}" != 1 ]; then
  bench_host profile-guest
  # tests/vm/run passes only UNBD_* (and a few) into the guest.
  export UNBD_PROFILE_FIO=${PROFILE_FIO:---rw=randwrite --bs=4k --iodepth=32}
  export UNBD_PROFILE_TOP=${PROFILE_TOP:-40} UNBD_PROFILE_KERNEL=${PROFILE_KERNEL:-0}
  exec "$source_dir/tests/vm/run" -- bash "$here/profile-guest.sh" "$@"
fi

# ---- in the guest ----
bench_guest
export UNBD_STATE_DIR=$TESTDIR/state
command -v perf >/dev/null || fail "perf is not installed (apt install linux-perf)"
port=$(pick_port)
start_nbdkit -P "$TESTDIR/nbdkit.pid" -i 127.0.0.1 -p "$port" memory "$UNBD_BENCH_SIZE"
if [ "$UNBD_PROFILE_KERNEL" = 1 ]; then
  nbd-client 127.0.0.1 "$port" /dev/nbd0 -C "$queues" -b 512 >/dev/null || fail nbd-client
  cleanup_fn "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
  for _ in $(seq 100); do [ "$(blockdev --getsize64 /dev/nbd0)" -gt 0 ] && break; sleep 0.05; done
  target=/dev/nbd0 client=kernel
else
  json=$("$UNBD" attach --json "nbd://127.0.0.1:$port/" -q "$queues" "$@") || fail "unbd attach $*"
  cleanup_fn "'$UNBD' detach $(jq -r .id <<<"$json") 2>/dev/null"
  target=$(jq -r .dev <<<"$json") client="unbd $*"
  echo "== $target: zero_copy=$(jq -r .zero_copy <<<"$json") durability=$(jq -r .durability <<<"$json")"
fi
fill_device "$target"
collapsed() { cat /sys/kernel/mm/transparent_hugepage/khugepaged/pages_collapsed 2>/dev/null || echo 0; }
collapsed_before=$(collapsed)
# shellcheck disable=SC2086
perf record -q -a -e cpu-clock -F 2000 -o "$TESTDIR/perf.data" -- \
  fio --name=profile --filename="$target" --ioengine=io_uring --direct=1 --time_based \
  --runtime="$runtime" --group_reporting $UNBD_PROFILE_FIO --output-format=terse --terse-version=3 >"$TESTDIR/fio.terse"
echo "== $client, fio $UNBD_PROFILE_FIO: $(awk -F';' '{ printf "read %s IOPS, write %s IOPS", $8, $49 }' "$TESTDIR/fio.terse")"
# khugepaged shows up in the profile when it collapses some process's
# memory into huge pages during the run (copying and clearing 2 MiB each).
echo "== transparent huge pages: $thp; khugepaged: $(( $(collapsed) - collapsed_before )) huge pages collapsed during the run"
for p in $(pgrep -x unbd) $(pgrep -x nbdkit); do
  echo "   $(cat /proc/"$p"/comm 2>/dev/null) pid $p: $(awk '/AnonHugePages/ { print $2 " kB" }' /proc/"$p"/smaps_rollup 2>/dev/null) in anonymous huge pages"
done
echo "== by process"
perf report -q -i "$TESTDIR/perf.data" --no-children --sort comm --percent-limit 1 2>/dev/null | head -20
echo "== by symbol (top $UNBD_PROFILE_TOP)"
perf report -q -i "$TESTDIR/perf.data" --no-children --sort comm,dso,sym 2>/dev/null | head -"$UNBD_PROFILE_TOP"
