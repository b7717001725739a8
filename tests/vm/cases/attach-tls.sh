#!/bin/bash
# attach nbds:// (user-space TLS through the per-connection tunnel): a PSK
# export over a Unix socket with 2 queues (2 TLS connections) and an x509
# export over TCP; zero copy is off (and --zero-copy=on refused, saying why);
# fio --verify=crc32c through the device; bytes written through the device
# are what libnbd reads over its own TLS connection; a server killed and
# restarted is reconnected with a new TLS handshake and I/O goes on; detach
# leaves nothing behind.
# Runs in the guest: tests/vm/run -- bash THIS.
. "$(dirname "$0")/../../functions.sh"
. "$(dirname "$0")/../../integration/support/tls.sh"
[ -e /dev/ublk-control ] || fail "/dev/ublk-control missing (not in the VM?)"
export UNBD_STATE_DIR=$TESTDIR/state
cleanup_fn '"$UNBD" detach --all'
# libnbd over TLS: the URI names credential files, which needs allow_local_file.
nbd_read() {  # nbd_read URI OFFSET LENGTH > FILE
  PATH=/usr/bin:$PATH nbdsh -c "h.set_uri_allow_local_file(True)" -c "h.connect_uri('$1')" \
    -c "import sys; sys.stdout.buffer.write(h.pread($3, $2))"
}

make_tls_credentials localhost
disk=$TESTDIR/disk.img
truncate -s 64M "$disk"
sock=$TESTDIR/nbd.sock
port=$(pick_port)
start_psk() {
  start_nbdkit -P "$TESTDIR/psk.pid" -U "$sock" --tls=require --tls-psk="$PKI/keys.psk" file "$disk"
}
start_psk
start_nbdkit -P "$TESTDIR/x509.pid" -i 127.0.0.1 -p "$port" --tls=require --tls-certificates="$PKI" \
  --tls-verify-peer memory 64M
psk_uri="nbds+unix://alice@/?socket=$sock&tls-psk-file=$PKI/keys.psk"
x509_uri="nbds://localhost:$port/?tls-certificates=$PKI"

expect_fail "zero copy on with TLS" "$UNBD" attach "$psk_uri" --zero-copy=on
grep -q "zero-copy=on cannot work with TLS: unbd encrypts in user space (copy mode)" "$STDERR" ||
  fail "unexpected message: $(cat "$STDERR")"

check() {  # check URI QUEUES
  local uri=$1 queues=$2 json dev id zc pid
  echo "== $uri -q $queues"
  json=$("$UNBD" attach "$uri" -q "$queues" --json) || fail "attach $uri"
  dev=$(jq -r .dev <<<"$json"); id=$(jq -r .id <<<"$json")
  zc=$(jq -r .zero_copy <<<"$json"); pid=$(jq -r .pid <<<"$json")
  echo "   $dev zero_copy=$zc pid=$pid"
  [[ $zc == off/* ]] || fail "TLS must run in copy mode, got $zc"
  [ "$(blockdev --getsize64 "$dev")" = $((64 << 20)) ] || fail "device size"
  "$UNBD" list --json | jq -e --arg dev "$dev" --argjson q "$queues" \
    '.[] | select(.dev == $dev and .state == "live" and .queues == $q)' >/dev/null ||
    fail "unbd list does not show $dev live with $queues queues"

  fio --name=tls --filename="$dev" --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k-256k --size=32M \
    --iodepth=16 --verify=crc32c --verify_fatal=1 --output="$TESTDIR/fio.out" || { cat "$TESTDIR/fio.out"; fail "fio --verify on $dev"; }

  head -c 4M /dev/urandom >"$TESTDIR/to-device"
  dd if="$TESTDIR/to-device" of="$dev" bs=1M seek=40 oflag=direct conv=fsync status=none || fail "write $dev"
  nbd_read "$uri" $((40 << 20)) $((4 << 20)) >"$TESTDIR/from-export" || fail "libnbd read over TLS"
  cmp "$TESTDIR/to-device" "$TESTDIR/from-export" || fail "export differs from what was written to $dev"

  if [ "$uri" = "$psk_uri" ]; then
    # The server dies and comes back: a new TLS handshake per connection.
    _kill_pidfile "$TESTDIR/psk.pid"
    rm -f "$sock"  # a killed nbdkit may leave it
    start_psk
    dd if="$dev" of="$TESTDIR/back" bs=1M skip=40 count=4 iflag=direct status=none || fail "read after restart"
    cmp "$TESTDIR/to-device" "$TESTDIR/back" || fail "data differs after the reconnect"
    "$UNBD" list --json | jq -e --arg dev "$dev" '.[] | select(.dev == $dev and .reconnects >= 1)' >/dev/null ||
      fail "no reconnect counted: $("$UNBD" list --json)"
  fi

  "$UNBD" detach "$dev" || fail "detach $dev"
  [ ! -e "$dev" ] || fail "$dev still exists after detach"
  [ ! -e "$UNBD_STATE_DIR/$id.json" ] || fail "state file left behind"
  ! kill -0 "$pid" 2>/dev/null || fail "daemon $pid still running after detach"
}

check "$psk_uri" 2
check "$x509_uri" 1
[ -z "$(ls /dev/ublkb* 2>/dev/null)" ] || fail "devices left: $(ls /dev/ublkb*)"
echo "PASS"
