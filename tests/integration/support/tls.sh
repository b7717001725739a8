# Helpers for the TLS tests. Source after functions.sh.
#
#   require_tls_tools            certtool and psktool (gnutls-bin) or fail
#   make_tls_credentials [HOST]  support/make-tls-credentials.sh into $TESTDIR/pki
#                                (sets PKI)
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
