#!/usr/bin/env bash
# unbd's engine vs libnbd against nbdkit memory, over a Unix socket and TCP
# loopback, at 4K QD1, 4K QD64 and 1M QD8, read and write. Prints a table
# with ratios (unbd / libnbd). Each cell is the median of REPEAT runs, engines
# interleaved so background load hits both alike.
#
#   tests/bench/engine-vs-libnbd.sh [BENCH_BINARY] [SECONDS] [REPEAT] [-- extra unbd-bench args for unbd]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BENCH=${1:-$here/../../build/default/tests/bench/unbd-bench}
SECS=${2:-3}
REPEAT=${3:-3}
shift $(( $# < 3 ? $# : 3 )) || true
[ "${1:-}" = "--" ] && shift
UNBD_EXTRA=("$@")

dir=$(mktemp -d /tmp/unbd-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nbdkit -f --exit-with-parent -U "$dir/sock" memory 2G & pids+=($!)
nbdkit -f --exit-with-parent -i 127.0.0.1 -p "$port" memory 2G & pids+=($!)
for _ in $(seq 100); do [ -S "$dir/sock" ] && break; sleep 0.1; done
sleep 0.5

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run() {  # engine uri rw bs qd -> "iops cpu p50"
  local out
  if [ "$1" = unbd ]; then
    out=$("$BENCH" "$2" --engine unbd --rw "$3" --bs "$4" --qd "$5" --seconds "$SECS" --json "${UNBD_EXTRA[@]}")
  else
    out=$("$BENCH" "$2" --engine libnbd --rw "$3" --bs "$4" --qd "$5" --seconds "$SECS" --json)
  fi
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["iops"], j["cpu_us_per_io"], j["lat_p50_us"])' "$out"
}

printf "%-6s %-10s %-9s | %10s %10s %6s | %8s %8s %6s | %8s %8s\n" \
  transport workload "" "unbd IOPS" "libnbd" ratio "unbd us" "libnbd" ratio "unbd p50" "libnbd"
for transport in unix tcp; do
  if [ $transport = unix ]; then uri="nbd+unix:///?socket=$dir/sock"; else uri="nbd://127.0.0.1:$port/"; fi
  for shape in "4k 1" "4k 64" "1M 8"; do
    set -- $shape
    for rw in randread randwrite; do
      [ "$1" = 1M ] && rw=${rw#rand}
      : >"$dir/u"; : >"$dir/l"
      for _ in $(seq "$REPEAT"); do
        run unbd "$uri" "$rw" "$1" "$2" >>"$dir/u"
        run libnbd "$uri" "$rw" "$1" "$2" >>"$dir/l"
      done
      ui=$(cut -d' ' -f1 "$dir/u" | median); li=$(cut -d' ' -f1 "$dir/l" | median)
      uc=$(cut -d' ' -f2 "$dir/u" | median); lc=$(cut -d' ' -f2 "$dir/l" | median)
      up=$(cut -d' ' -f3 "$dir/u" | median); lp=$(cut -d' ' -f3 "$dir/l" | median)
      printf "%-6s %-10s %-9s | %10.0f %10.0f %6.2f | %8.2f %8.2f %6.2f | %8.0f %8.0f\n" \
        $transport "$rw" "$1 QD$2" "$ui" "$li" "$(echo "$ui / $li" | bc -l)" \
        "$uc" "$lc" "$(echo "$uc / $lc" | bc -l)" "$up" "$lp"
    done
  done
done
echo "(IOPS ratio = unbd/libnbd, higher is better; CPU us/IO ratio = unbd/libnbd, lower is better)"
