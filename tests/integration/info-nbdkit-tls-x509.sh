#!/usr/bin/env bash
# nbds:// with x509 against nbdkit --tls=require --tls-verify-peer (client
# certificates checked too): unbd info agrees with nbdinfo and shows the TLS
# it used; each way verification can fail gives its own one-line reason.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"
. "$(dirname "$0")/support/tls.sh"

make_tls_credentials localhost
start_x509_nbdkit tls memory 1M
port=$X509_PORT
uri="nbds://localhost:$port/?tls-certificates=$PKI"

agree_with_nbdinfo "$uri"
json_field tls | grep -q '^"userspace (TLSv1\.[23], x509, ' || fail "tls field: $(json_field tls)"
"$UNBD" info --tls-certificates "$PKI" "nbds://localhost:$port/" >"$TESTDIR/out" || fail "info with --tls-certificates"
grep -q $'^\ttls: userspace (TLSv1.3, x509, ' "$TESTDIR/out" || fail "no tls line: $(cat "$TESTDIR/out")"
"$UNBD" info --tls=require --tls-certificates "$PKI" "nbd://127.0.0.1:$port/" >/dev/null ||
  fail "nbd:// with --tls=require (certificate checked against the address 127.0.0.1)"
"$UNBD" info --list --tls-certificates "$PKI" "nbds://localhost:$port/" >/dev/null || fail "info --list over TLS"

expect_fail "host name mismatch" "$UNBD" info --tls-certificates "$PKI" --tls-hostname wrong.example \
  "nbds://localhost:$port/"
grep -qx "unbd: the server's certificate does not match the host name 'wrong.example' (nbds://localhost:$port/): give the name it has with tls-hostname= or --tls-hostname" \
  "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

cp "$PKI/client-cert.pem" "$PKI/client-key.pem" "$PKI/other-ca/"
expect_fail "unknown CA" "$UNBD" info --tls-certificates "$PKI/other-ca" "nbds://localhost:$port/"
grep -qx "unbd: the server's certificate is signed by an unknown CA (nbds://localhost:$port/): not by the ca-cert.pem in --tls-certificates (or the system's CAs)" \
  "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
# Not verifying (tests only) gets past the unknown CA.
"$UNBD" info --no-tls-verify-peer --tls-certificates "$PKI/other-ca" "nbds://localhost:$port/" >/dev/null ||
  fail "--no-tls-verify-peer"

mkdir "$TESTDIR/ca-only" && cp "$PKI/ca-cert.pem" "$TESTDIR/ca-only/"
expect_fail "no client certificate" "$UNBD" info --tls-certificates "$TESTDIR/ca-only" "nbds://localhost:$port/"
grep -q "does the server want a client certificate? put client-cert.pem and client-key.pem in the --tls-certificates directory" \
  "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

expect_fail "no CA file" "$UNBD" info --tls-certificates "$TESTDIR" "nbds://localhost:$port/"
grep -qx "unbd: no CA certificate $TESTDIR/ca-cert.pem (tls-certificates=DIR needs DIR/ca-cert.pem)" "$STDERR" ||
  fail "unexpected message: $(cat "$STDERR")"

# A TLS-only server for a plain nbd:// client: refused with a hint.
expect_fail "nbd:// to a TLS server" "$UNBD" info "nbd://localhost:$port/"
grep -q "the server requires TLS (nbd://localhost:$port/): use an nbds:// URI or --tls=require" "$STDERR" ||
  fail "unexpected message: $(cat "$STDERR")"

# TLS 1.2 (the server limited to it: GnuTLS's system priority file).
printf '[overrides]\ndisabled-version = tls1.3\n' >"$TESTDIR/tls12.conf"
GNUTLS_SYSTEM_PRIORITY_FILE=$TESTDIR/tls12.conf start_x509_nbdkit tls12 memory 1M
port12=$X509_PORT
"$UNBD" info --tls-certificates "$PKI" "nbds://localhost:$port12/" >"$TESTDIR/out" || fail "TLS 1.2 x509"
grep -q $'^\ttls: userspace (TLSv1.2, x509, ' "$TESTDIR/out" || fail "not TLS 1.2: $(cat "$TESTDIR/out")"
expect_fail "TLS 1.2, host name mismatch" "$UNBD" info --tls-certificates "$PKI" --tls-hostname wrong.example \
  "nbds://localhost:$port12/"
grep -q "does not match the host name 'wrong.example'" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

# A server certificate past its expiry date.
start_nbdkit -P "$TESTDIR/pid-exp" -U "$TESTDIR/exp.sock" --tls=require --tls-certificates="$PKI/expired" memory 1M
expect_fail "expired certificate" "$UNBD" info --tls-certificates "$PKI" --tls-hostname localhost \
  "nbds+unix:///?socket=$TESTDIR/exp.sock"
grep -qx "unbd: the server's certificate has expired (nbds+unix:///?socket=$TESTDIR/exp.sock)" "$STDERR" ||
  fail "unexpected message: $(cat "$STDERR")"
