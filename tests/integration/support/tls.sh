# Helpers for the TLS tests. Source after functions.sh.
#
#   require_tls_tools            certtool and psktool (gnutls-bin) or fail
#   make_tls_credentials [HOST]  support/make-tls-credentials.sh into $TESTDIR/pki
#                                (sets PKI)
#   start_x509_nbdkit NAME PLUGIN [ARGS...]   nbdkit --tls=require with $PKI's
#                                certificates (client certificates verified) on
#                                127.0.0.1:$X509_PORT (a fresh port); pid file
#                                $TESTDIR/NAME.pid; an env prefix
#                                (GNUTLS_SYSTEM_PRIORITY_FILE=...) reaches nbdkit
#   tls_libnbd_read URI OFFSET LENGTH > FILE   libnbd (nbdsh) over its own TLS
#   check_tls_device DEV URI     fio --verify=crc32c through DEV, then 4 MiB
#                                written at 40 MiB read back by libnbd from URI
#                                (left in $TESTDIR/to-device)
require_tls_tools() {
  command -v certtool >/dev/null && command -v psktool >/dev/null ||
    fail "certtool and psktool are missing: install gnutls-bin (scripts/install-deps.sh)"
}

make_tls_credentials() {
  require_tls_tools
  PKI=$TESTDIR/pki
  "$UNBD_SOURCE_DIR/tests/integration/support/make-tls-credentials.sh" "$PKI" "${1:-localhost}" ||
    fail "cannot make TLS credentials"
}

start_x509_nbdkit() {
  local name=$1; shift
  X509_PORT=$(pick_port)
  start_nbdkit -P "$TESTDIR/$name.pid" -i 127.0.0.1 -p "$X509_PORT" --tls=require --tls-certificates="$PKI" \
    --tls-verify-peer "$@"
}

# The URI names credential files, which libnbd allows only when told.
tls_libnbd_read() {
  PATH=/usr/bin:$PATH nbdsh -c "h.set_uri_allow_local_file(True)" -c "h.connect_uri('$1')" \
    -c "import sys; sys.stdout.buffer.write(h.pread($3, $2))"
}

check_tls_device() {
  local dev=$1 uri=$2
  fio --name=tls --filename="$dev" --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k-256k --size=32M \
    --iodepth=16 --verify=crc32c --verify_fatal=1 --output="$TESTDIR/fio.out" ||
    { cat "$TESTDIR/fio.out"; fail "fio --verify on $dev"; }
  head -c 4M /dev/urandom >"$TESTDIR/to-device"
  dd if="$TESTDIR/to-device" of="$dev" bs=1M seek=40 oflag=direct conv=fsync status=none || fail "write $dev"
  tls_libnbd_read "$uri" $((40 << 20)) $((4 << 20)) >"$TESTDIR/from-export" || fail "libnbd read over TLS"
  cmp "$TESTDIR/to-device" "$TESTDIR/from-export" || fail "export differs from what was written to $dev"
}
