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
  "$UNBD" list --json | jq -e --arg dev "$dev" '.[] | select(.dev == $dev and (.tls | startswith("userspace (TLSv1.3")))' \
    >/dev/null || fail "unbd list does not show the user-space TLS of $dev: $("$UNBD" list --json)"

  check_tls_device "$dev" "$uri"

  if [ "$uri" = "$psk_uri" ]; then
    # The server dies and comes back: a new TLS handshake per connection.
    _kill_pidfile "$TESTDIR/psk.pid"
    rm -f "$sock"  # a killed nbdkit may leave it
    start_psk
    dd if="$dev" of="$TESTDIR/back" bs=1M skip=40 count=4 iflag=direct status=none || fail "read after restart"
    cmp "$TESTDIR/to-device" "$TESTDIR/back" || fail "data differs after the reconnect"
    # The daemon rewrites its state file once a second: the count may lag the I/O.
    counted() { "$UNBD" list --json | jq -e --arg dev "$dev" '.[] | select(.dev == $dev and .reconnects >= 1)' >/dev/null; }
    for _ in $(seq 50); do counted && break; sleep 0.1; done
    counted || fail "no reconnect counted: $("$UNBD" list --json)"
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
