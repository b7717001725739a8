#!/usr/bin/env bash
# nbds:// against qemu-nbd's TLS: --object tls-creds-x509 (which checks
# client certificates by default) and tls-creds-psk (DIR/keys.psk).
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"
. "$(dirname "$0")/support/tls.sh"

make_tls_credentials localhost
truncate -s 4M "$TESTDIR/disk.img"

serve() {  # serve NAME CREDS-OBJECT
  qemu-nbd -f raw -t --fork --pid-file="$TESTDIR/$1.pid" -k "$TESTDIR/$1.sock" -x disk \
    --object "$2" --tls-creds tls0 "$TESTDIR/disk.img" || fail "qemu-nbd ($1) failed to start"
  cleanup_fn _kill_pidfile "$TESTDIR/$1.pid"
}

serve x509 "tls-creds-x509,id=tls0,endpoint=server,dir=$PKI"
uri="nbds+unix:///disk?socket=$TESTDIR/x509.sock&tls-certificates=$PKI"
agree_with_nbdinfo "$uri"
json_field tls | grep -q '^"userspace (TLSv1\.3, x509, ' || fail "tls field: $(json_field tls)"
expect_fail "qemu-nbd x509, unknown CA" "$UNBD" info \
  "nbds+unix:///disk?socket=$TESTDIR/x509.sock&tls-certificates=$PKI/other-ca"
grep -q "the server's certificate is signed by an unknown CA" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

serve psk "tls-creds-psk,id=tls0,endpoint=server,dir=$PKI"
uri="nbds+unix://alice@/disk?socket=$TESTDIR/psk.sock&tls-psk-file=$PKI/keys.psk"
agree_with_nbdinfo "$uri"
json_field tls | grep -q '^"userspace (TLSv1\.3, psk, ' || fail "tls field: $(json_field tls)"
expect_fail "qemu-nbd psk, wrong key" "$UNBD" info --tls-psk "$PKI/wrong.psk" --tls-username alice \
  "nbds+unix:///disk?socket=$TESTDIR/psk.sock"
grep -q "the server refused the pre-shared key of user 'alice'" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
