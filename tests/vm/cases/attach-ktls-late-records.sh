#!/bin/bash
# kTLS on TLS 1.3 with a server that sends records no GnuTLS server sends
# after the handshake (tests/vm/tls_late_records_server.cpp, OpenSSL):
# - a NewSessionTicket every 16th reply: the engine's receive fails with EIO
#   on it, the reply reader takes it with recvmsg + cmsg and drops it, and
#   goes on -- no reconnect, fio verifies, the daemon's log says so;
# - a KeyUpdate every 200th reply: new keys the kernel's receive side does not
#   follow here, so a lost connection with that reason, a reconnect with a
#   new TLS session, and no data lost (fio verifies across them).
# Runs in the guest: tests/vm/run -- bash THIS.
. "$(dirname "$0")/../lib.sh"
. "$UNBD_SOURCE_DIR/tests/integration/support/tls.sh"
export UNBD_STATE_DIR=$TESTDIR/state; STATE_DIR=$UNBD_STATE_DIR
cleanup_fn '"$UNBD" detach --all'
modprobe tls || fail "the guest kernel has no tls module (CONFIG_TLS)"
make_tls_credentials localhost
server_bin=$UNBD_BUILD_DIR/tests/vm/tls-late-records-server
[ -x "$server_bin" ] || fail "$server_bin not built"

start_late_server() {  # TICKET-EVERY KEY-UPDATE-EVERY
  port=$(pick_port)
  "$server_bin" "$port" "$PKI" $((64 << 20)) "$1" "$2" >"$TESTDIR/server.out" 2>&1 &
  server_pid=$!
  cleanup_fn "kill $server_pid 2>/dev/null"
  wait_until 10 'grep -q ready "$TESTDIR/server.out"' || fail "server: $(cat "$TESTDIR/server.out")"
}
fio_verify() {  # NAME
  fio --name="$1" --filename="$DEV" --ioengine=io_uring --direct=1 --rw=randrw --bs=4k-64k --size=16M \
    --iodepth=16 --verify=crc32c --verify_fatal=1 --output="$TESTDIR/$1.out" || { cat "$TESTDIR/$1.out"; fail "fio $1"; }
}
reconnects() { "$UNBD" list --json | jq -er --arg dev "$DEV" '.[] | select(.dev == $dev) | .reconnects'; }

echo "== session tickets in the middle of the transmission phase"
start_late_server 16 0
attach "nbds://localhost:$port/?tls-certificates=$PKI" --tls-mode=ktls -q 2
jq -e '.tls | startswith("ktls (TLSv1.3, ")' <<<"$ATTACH_JSON" >/dev/null || fail "not kTLS 1.3: $(jq .tls <<<"$ATTACH_JSON")"
fio_verify tickets
log=$STATE_DIR/$ID.log
dropped=$(grep -c "dropped a TLS session ticket" "$log" || true)
echo "tickets dropped: $dropped"
[ "$dropped" -ge 10 ] || fail "expected the tickets dropped in place, log: $(tail -20 "$log")"
[ "$(reconnects)" = 0 ] || fail "a ticket cost a reconnect: $(grep -E 'lost|reconnect' "$log" | head)"
detach "$ID"
kill "$server_pid"

echo "== key updates"
start_late_server 0 200
attach "nbds://localhost:$port/?tls-certificates=$PKI" --tls-mode=ktls -q 2
fio_verify keyupdates
log=$STATE_DIR/$ID.log
grep -m1 "KeyUpdate" "$log" || fail "no KeyUpdate reason in the log: $(tail -20 "$log")"
wait_until 5 '[ "$(reconnects)" -ge 1 ]' || fail "a KeyUpdate should cost a reconnect: $("$UNBD" list --json)"
echo "reconnects: $(reconnects)"
detach "$ID"
expect_no_devices
echo "PASS"
