#!/bin/bash
# nbds:// through kTLS vs the user-space tunnel vs plain nbd://, in one boot
# of the test VM (the measurement behind --tls-mode=auto, DESIGN.md "TLS"),
# and the kernel client beside them, plain and with nbd-client's own TLS
# (-x: nbd-client stays as a GnuTLS proxy between a socketpair handed to
# nbd.ko and the TCP socket).
#
#   tests/bench/tls-modes.sh            (on the host: boots the VM, with the lock)
#
# One nbdkit memory export in the guest with --tls=on (TLS optional: the same
# server for all six), x509 over TCP on 127.0.0.1, one connection (-q 1,
# -C 1), unbd in copy mode for plain, ktls and userspace (the tunnel needs
# it; the others for a fair comparison), and ktls-zc: kTLS with zero copy
# (the kernel encrypts from the request's pages; stepwise sends, nbd/ktls.h);
# ktls-zc and the others negotiate TLS 1.3 (the kernel gets 1.3's receive key
# from us, nbd/tls/tls13_receive_key.h); ktls12-zc is ktls-zc against a second
# nbdkit limited to TLS 1.2 (a GnuTLS priority file), the version whose keys
# OpenSSL gives the kernel itself. fio direct io_uring, time
# based: 4K randread and randwrite at QD 32, 1M read and write at QD 8. Each
# round runs every workload on each mode in turn. The guest clock is instruction counted (UNBD_VM_ICOUNT=4, as
# the other benchmarks): rates are "per instruction the whole guest spends",
# crypto included, and repeat between boots.
#
# Environment: UNBD_BENCH_RUNTIME (seconds per workload, 4), UNBD_BENCH_ROUNDS (1)
# (UNBD* variables reach the guest).
set -uo pipefail
if [ "${UNBD_VM_GUEST:-0}" != 1 ]; then
  here=$(cd "$(dirname "$0")/../.." && pwd)
  # 2G: two memory exports of 512M (256M of each written) in a 1G guest
  # left the page cache starved and every cell slower.
  cd "$here" && exec env UNBD_VM_ICOUNT="${UNBD_VM_ICOUNT:-4}" UNBD_VM_TIMEOUT="${UNBD_VM_TIMEOUT:-900}" \
    UNBD_VM_MEM="${UNBD_VM_MEM:-2G}" \
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
port12=$(pick_port)
printf '[overrides]\ndisabled-version = tls1.3\n' >"$TESTDIR/tls12.conf"
GNUTLS_SYSTEM_PRIORITY_FILE=$TESTDIR/tls12.conf start_nbdkit -P "$TESTDIR/pid12" -i 127.0.0.1 -p "$port12" \
  --tls=require --tls-certificates="$PKI" memory 512M
declare -A dev
attach "nbd://127.0.0.1:$port/" -q 1 --zero-copy=off; dev[plain]=$DEV
attach "$tls_uri" -q 1 --tls-mode=ktls --zero-copy=off; dev[ktls]=$DEV; echo "ktls: $(jq -r .tls <<<"$ATTACH_JSON")"
attach "$tls_uri" -q 1 --tls-mode=ktls --zero-copy=on; dev[ktls-zc]=$DEV
echo "ktls-zc: $ZC, $(jq -r .tls <<<"$ATTACH_JSON")"
attach "nbds://localhost:$port12/?tls-certificates=$PKI" -q 1 --tls-mode=ktls --zero-copy=on; dev[ktls12-zc]=$DEV
echo "ktls12-zc: $ZC, $(jq -r .tls <<<"$ATTACH_JSON")"
attach "$tls_uri" -q 1 --tls-mode=userspace; dev[userspace]=$DEV; echo "userspace: $(jq -r .tls <<<"$ATTACH_JSON")"
cleanup_fn 'for n in 0 1; do nbd-client -d /dev/nbd$n >/dev/null 2>&1; done'
kernel_connect() { # DEV [nbd-client TLS options]: -C 1, then wait for the size
  local dev=$1; shift
  nbd-client localhost "$port" "$dev" -N "" -C 1 -b 512 "$@" >"$TESTDIR/nbd-client.out" 2>&1 ||
    { cat "$TESTDIR/nbd-client.out"; fail "nbd-client $dev $*"; }
  wait_until 10 '[ "$(cat /sys/block/${dev#/dev/}/size)" -gt 0 ]' || fail "nbd-client: $dev has no size"
}
kernel_connect /dev/nbd0; dev[kernel]=/dev/nbd0
kernel_connect /dev/nbd1 -x -A "$PKI/ca-cert.pem" -H localhost; dev[kernel-tls]=/dev/nbd1
# With TLS nbd-client stays, relaying between nbd.ko's socketpair and TCP.
pgrep -f "nbd-client localhost $port /dev/nbd1" >/dev/null || fail "no nbd-client TLS proxy for /dev/nbd1"
echo "kernel-tls: nbd-client $(nbd-client -V 2>&1 | head -1 | grep -o '[0-9.]*$') -x (GnuTLS proxy)"
modes=(plain ktls ktls-zc ktls12-zc userspace kernel kernel-tls)
# One export behind every device: filling it once (plain) makes every read
# hit allocated memory.
dd if=/dev/zero of="${dev[plain]}" bs=1M count=256 oflag=direct status=none || fail "filling the export"
dd if=/dev/zero of="${dev[ktls12-zc]}" bs=1M count=256 oflag=direct status=none || fail "filling the TLS 1.2 export"

workloads=("randread 4k 32" "randwrite 4k 32" "read 1M 8" "write 1M 8")
declare -A sum
for round in $(seq "$BENCH_ROUNDS"); do
  for w in "${workloads[@]}"; do
    read -r rw bs qd <<<"$w"
    for mode in "${modes[@]}"; do
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
printf '%-18s' workload; printf ' %11s' "${modes[@]}"
printf ' %10s %10s %10s %10s %11s %11s %11s\n' ktls/plain user/plain kzc/ktls kzc/kzc12 ktls/k-tls kzc/k-tls user/k-tls
for w in "${workloads[@]}"; do
  read -r rw bs qd <<<"$w"
  unit=IOPS; [ "$bs" = 1M ] && unit=MiB/s
  printf '%-18s' "$rw $bs QD$qd $unit"
  for mode in "${modes[@]}"; do awk -v n="$BENCH_ROUNDS" -v s="${sum["$w/$mode"]}" 'BEGIN{printf " %11.1f", s/n}'; done
  awk -v p="${sum["$w/plain"]}" -v k="${sum["$w/ktls"]}" -v z="${sum["$w/ktls-zc"]}" -v u="${sum["$w/userspace"]}" \
    -v kt="${sum["$w/kernel-tls"]}" -v z12="${sum["$w/ktls12-zc"]}" \
    'BEGIN{printf " %10.2f %10.2f %10.2f %10.2f %11.2f %11.2f %11.2f\n", k/p, u/p, z/k, z/z12, k/kt, z/kt, u/kt}'
done
