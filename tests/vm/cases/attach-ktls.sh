#!/bin/bash
# attach nbds:// with --tls-mode=ktls: the kernel's TLS (the `tls` module)
# encrypts and decrypts on the engine's own TCP socket, no tunnel. Asserts it
# really is kTLS (`ss` shows tcp-ulp-tls on every connection; `unbd list`
# says ktls, TLSv1.3: the send key set by OpenSSL 3.0, the receive key by us),
# zero copy by default where ublk has AUTO_BUF_REG, copy mode on 6.12 (stepwise sends:
# the kernel encrypts from and decrypts into the request's pages), fio
# --verify=crc32c through the device, the bytes checked by libnbd over its own
# TLS, a server killed and restarted (the reconnect redoes kTLS), kTLS in
# copy mode (--zero-copy=off), the same server with --tls-mode=userspace (no
# ULP on the socket), SEND_ZC and kTLS on a Unix socket refused, a TLS 1.2
# server (OpenSSL sets both keys) and TLS 1.3 servers limited to AES-128-GCM,
# AES-256-GCM and ChaCha20-Poly1305 (the kernel's three key layouts) too, and detach leaving
# nothing behind.
# Runs in the guest: tests/vm/run -- bash THIS.
. "$(dirname "$0")/../lib.sh"
. "$UNBD_SOURCE_DIR/tests/integration/support/tls.sh"
export UNBD_STATE_DIR=$TESTDIR/state; STATE_DIR=$UNBD_STATE_DIR
cleanup_fn '"$UNBD" detach --all'
modprobe tls || fail "the guest kernel has no tls module (CONFIG_TLS)"
# The established connections to the server on $port that run the tls ULP.
ktls_sockets() { ss -tnie state established "( dport = :$port )" | grep -c 'tcp-ulp-tls' || true; }

make_tls_credentials localhost
disk=$TESTDIR/disk.img
truncate -s 64M "$disk"
port=$(pick_port)
start_server() {
  start_nbdkit -P "$TESTDIR/x509.pid" -i 127.0.0.1 -p "$port" --tls=require --tls-certificates="$PKI" \
    --tls-verify-peer file "$disk"
}
start_server
uri="nbds://localhost:$port/?tls-certificates=$PKI"

expect_fail "SEND_ZC with kTLS" "$UNBD" attach "$uri" --tls-mode=ktls --payload-ops send_zc_fixed
grep -q "send_zc_fixed is not supported with kernel TLS" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "kTLS on a Unix socket" "$UNBD" attach --tls-mode=ktls \
  "nbds+unix:///?socket=$TESTDIR/none.sock&tls-certificates=$PKI"
grep -q "tls-mode=ktls needs TCP" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

echo "== attach --tls-mode=ktls -q 2"
attach "$uri" --tls-mode=ktls -q 2
pid=$(jq -r .pid <<<"$ATTACH_JSON")
# 7.3 has UBLK_F_AUTO_BUF_REG: zero copy, sent stepwise on kTLS; 6.12 has
# not: copy mode, the same kTLS socket.
if kernel_has AUTO_BUF_REG; then
  [[ $ZC == auto-buf-reg/* ]] || fail "kTLS should run zero copy here, got $ZC"
  payload_modes=("--payload-ops read_write_fixed" "--zero-copy=off")
else
  [[ $ZC == off/* ]] || fail "no AUTO_BUF_REG: kTLS should run copy mode, got $ZC"
  payload_modes=("--zero-copy=off")
fi
echo "zero copy: $ZC"
[ "$QUEUES" = 2 ] || fail "expected 2 queues, got $QUEUES"
jq -e '.tls | startswith("ktls (TLSv1.3, x509, ")' <<<"$ATTACH_JSON" >/dev/null ||
  fail "attach --json tls: $(jq .tls <<<"$ATTACH_JSON")"
"$UNBD" list --json | jq -e --arg dev "$DEV" '.[] | select(.dev == $dev and (.tls | startswith("ktls (TLSv1.3")) and
  (.uri | contains("tls-mode=ktls")))' >/dev/null || fail "unbd list --json: $("$UNBD" list --json)"
"$UNBD" list | grep -q '^     tls: ktls (TLSv1.3, x509, ' || fail "unbd list: $("$UNBD" list)"
[ "$(ktls_sockets)" = 2 ] || fail "expected 2 kTLS connections: $(ss -tnie state established)"
ss -tnie state established "( dport = :$port )" | grep -o 'tcp-ulp-tls.*' | head -1

check_tls_device "$DEV" "$uri"
"$UNBD" list --json | jq -e --arg dev "$DEV" '.[] | select(.dev == $dev and .reconnects == 0)' >/dev/null ||
  fail "reconnects without a server restart: $("$UNBD" list --json)"

echo "== server killed and restarted"
_kill_pidfile "$TESTDIR/x509.pid"
start_server
dd if="$DEV" of="$TESTDIR/back" bs=1M skip=40 count=4 iflag=direct status=none || fail "read after restart"
cmp "$TESTDIR/to-device" "$TESTDIR/back" || fail "data differs after the reconnect"
# The daemon rewrites its state file once a second: the count may lag the I/O.
wait_until 5 '"$UNBD" list --json | jq -e --arg dev "$DEV" ".[] | select(.dev == \$dev and .reconnects >= 1)" >/dev/null' ||
  fail "no reconnect counted: $("$UNBD" list --json)"
wait_until 10 '[ "$(ktls_sockets)" = 2 ]' || fail "the reconnected connections are not kTLS: $(ss -tnie state established)"
fio --name=ktls2 --filename="$DEV" --ioengine=io_uring --direct=1 --rw=randrw --bs=4k-64k --size=8M \
  --iodepth=8 --verify=crc32c --verify_fatal=1 --output="$TESTDIR/fio2.out" || { cat "$TESTDIR/fio2.out"; fail "fio after reconnect"; }

detach "$ID"
! kill -0 "$pid" 2>/dev/null || fail "daemon $pid still running after detach"
[ "$(ktls_sockets)" = 0 ] || fail "kTLS connections left after detach"

# On kTLS, the device reads back what the first one wrote, and fio verifies
# what it writes. $1: what to call it in messages.
ktls_device_works() {
  [ "$(ktls_sockets)" -ge 1 ] || fail "$1 is not kTLS: $(ss -tnie state established)"
  dd if="$DEV" of="$TESTDIR/back1" bs=1M skip=40 count=4 iflag=direct status=none || fail "read ($1)"
  cmp "$TESTDIR/to-device" "$TESTDIR/back1" || fail "data differs ($1)"
  fio --name=ktls3 --filename="$DEV" --ioengine=io_uring --direct=1 --rw=randrw --bs=4k-256k --size=8M \
    --iodepth=8 --verify=crc32c --verify_fatal=1 --output="$TESTDIR/fio3.out" || { cat "$TESTDIR/fio3.out"; fail "fio ($1)"; }
}

# The other payload modes on kTLS: zero copy with READ_FIXED/WRITE_FIXED,
# and copy mode. Each reads back what zero copy wrote, then writes and reads.
for mode in "${payload_modes[@]}"; do
  echo "== kTLS with $mode"
  # shellcheck disable=SC2086 # two words on purpose
  attach "$uri" --tls-mode=ktls $mode
  echo "zero copy: $ZC"
  case $mode in
  --zero-copy=off) [[ $ZC == off/* ]] || fail "$mode, got $ZC" ;;
  *) [[ $ZC == auto-buf-reg/read_write_fixed ]] || fail "$mode, got $ZC" ;;
  esac
  ktls_device_works "$mode"
  detach "$ID"
done

echo "== the same server, --tls-mode=userspace"
attach "$uri" --tls-mode=userspace
jq -e '.tls | startswith("userspace (TLSv1.3, x509, ")' <<<"$ATTACH_JSON" >/dev/null ||
  fail "attach --json tls: $(jq .tls <<<"$ATTACH_JSON")"
[ "$(ktls_sockets)" = 0 ] || fail "userspace mode runs the tls ULP"
dd if="$DEV" of="$TESTDIR/back2" bs=1M skip=40 count=4 iflag=direct status=none || fail "read (userspace)"
cmp "$TESTDIR/to-device" "$TESTDIR/back2" || fail "data differs (userspace)"
detach "$ID"
_kill_pidfile "$TESTDIR/x509.pid"

# Other servers through kTLS: GnuTLS limited by a priority file.
other_server() {  # NAME PRIORITY-OVERRIDES EXPECTED-TLS-PREFIX
  echo "== kTLS against a server with $1"
  printf '[overrides]\n%b' "$2" >"$TESTDIR/prio-$1.conf"
  GNUTLS_SYSTEM_PRIORITY_FILE=$TESTDIR/prio-$1.conf start_server
  attach "$uri" --tls-mode=ktls
  jq -e --arg want "$3" '.tls | startswith($want)' <<<"$ATTACH_JSON" >/dev/null ||
    fail "$1: attach --json tls: $(jq .tls <<<"$ATTACH_JSON") (want $3)"
  echo "tls: $(jq -r .tls <<<"$ATTACH_JSON")"
  ktls_device_works "$1"
  detach "$ID"
  _kill_pidfile "$TESTDIR/x509.pid"
}
other_server tls12 'disabled-version = tls1.3\n' "ktls (TLSv1.2, x509, "
# The kernel's three TLS 1.3 key layouts, whichever the default chose.
no_aes='tls-disabled-cipher = aes-256-gcm\ntls-disabled-cipher = aes-128-gcm\n'
other_server chacha "${no_aes}tls-disabled-cipher = aes-256-ccm\ntls-disabled-cipher = aes-128-ccm\n" \
  "ktls (TLSv1.3, x509, TLS_CHACHA20_POLY1305_SHA256"
other_server aes128 'tls-disabled-cipher = aes-256-gcm\ntls-disabled-cipher = chacha20-poly1305\n' \
  "ktls (TLSv1.3, x509, TLS_AES_128_GCM_SHA256"
other_server aes256 'tls-disabled-cipher = aes-128-gcm\ntls-disabled-cipher = chacha20-poly1305\n' \
  "ktls (TLSv1.3, x509, TLS_AES_256_GCM_SHA384"
expect_no_devices
echo "PASS"
