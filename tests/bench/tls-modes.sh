#!/bin/bash
# nbds:// through kTLS vs the user-space tunnel vs plain nbd://, in one boot
# of the test VM (the measurement behind --tls-mode=auto, DESIGN.md "TLS").
#
#   tests/bench/tls-modes.sh            (on the host: boots the VM, with the lock)
#
# One nbdkit memory export in the guest with --tls=on (TLS optional: the same
# server for all three), x509 over TCP on 127.0.0.1, one connection (-q 1),
# copy mode for all three (kTLS and the tunnel need it; plain too, for a fair
# comparison); fio direct io_uring, time based: 4K randread and randwrite at
# QD 32, 1M read and write at QD 8. Each round runs every workload on each
# mode in turn. The guest clock is instruction counted (UNBD_VM_ICOUNT=4, as
# the other benchmarks): rates are "per instruction the whole guest spends",
# crypto included, and repeat between boots.
#
# Environment: UNBD_BENCH_RUNTIME (seconds per workload, 4), UNBD_BENCH_ROUNDS (1)
# (UNBD* variables reach the guest).
set -uo pipefail
if [ "${UNBD_VM_GUEST:-0}" != 1 ]; then
  here=$(cd "$(dirname "$0")/../.." && pwd)
  cd "$here" && exec env UNBD_VM_ICOUNT="${UNBD_VM_ICOUNT:-4}" UNBD_VM_TIMEOUT="${UNBD_VM_TIMEOUT:-900}" \
    flock /tmp/unbd-vm-user.lock tests/vm/run -- bash tests/bench/tls-modes.sh
fi
. "$(dirname "$0")/../vm/lib.sh"
BENCH_RUNTIME=${UNBD_BENCH_RUNTIME:-4}
BENCH_ROUNDS=${UNBD_BENCH_ROUNDS:-1}
. "$UNBD_SOURCE_DIR/tests/integration/support/tls.sh"
export UNBD_STATE_DIR=$TESTDIR/state; STATE_DIR=$UNBD_STATE_DIR
cleanup_fn '"$UNBD" detach --all'
modprobe tls || fail "no tls module in the guest"
make_tls_credentials localhost
port=$(pick_port)
start_nbdkit -P "$TESTDIR/pid" -i 127.0.0.1 -p "$port" --tls=on --tls-certificates="$PKI" memory 512M
tls_uri="nbds://localhost:$port/?tls-certificates=$PKI"
declare -A dev
attach "nbd://127.0.0.1:$port/" -q 1 --zero-copy=off; dev[plain]=$DEV
attach "$tls_uri" -q 1 --tls-mode=ktls; dev[ktls]=$DEV; echo "ktls: $(jq -r .tls <<<"$ATTACH_JSON")"
attach "$tls_uri" -q 1 --tls-mode=userspace; dev[userspace]=$DEV; echo "userspace: $(jq -r .tls <<<"$ATTACH_JSON")"
for d in "${dev[@]}"; do dd if=/dev/zero of="$d" bs=1M count=256 oflag=direct status=none; done

workloads=("randread 4k 32" "randwrite 4k 32" "read 1M 8" "write 1M 8")
declare -A sum
for round in $(seq "$BENCH_ROUNDS"); do
  for w in "${workloads[@]}"; do
    read -r rw bs qd <<<"$w"
    for mode in plain ktls userspace; do
      out=$(fio --name=b --filename="${dev[$mode]}" --ioengine=io_uring --direct=1 --rw="$rw" --bs="$bs" \
        --iodepth="$qd" --size=256M --time_based --runtime="$BENCH_RUNTIME" --output-format=json) ||
        fail "fio $w on $mode"
      v=$(jq -r '.jobs[0] | if (.read.iops > 0) then .read else .write end |
        if ("'"$bs"'" == "1M") then (.bw_bytes / 1048576) else .iops end' <<<"$out")
      echo "round $round: $rw $bs QD$qd $mode $v"
      sum["$w/$mode"]=$(awk -v a="${sum["$w/$mode"]:-0}" -v b="$v" 'BEGIN{print a+b}')
    done
  done
done
echo
printf '%-18s %12s %12s %12s %10s %10s\n' workload plain ktls userspace ktls/plain user/plain
for w in "${workloads[@]}"; do
  read -r rw bs qd <<<"$w"
  p=${sum["$w/plain"]}; k=${sum["$w/ktls"]}; u=${sum["$w/userspace"]}
  unit=IOPS; [ "$bs" = 1M ] && unit=MiB/s
  awk -v n="$BENCH_ROUNDS" -v p="$p" -v k="$k" -v u="$u" -v w="$rw $bs QD$qd $unit" \
    'BEGIN{printf "%-18s %12.1f %12.1f %12.1f %10.2f %10.2f\n", w, p/n, k/n, u/n, k/p, u/p}'
done
