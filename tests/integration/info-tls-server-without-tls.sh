#!/usr/bin/env bash
# nbds:// (or --tls=require) to a server without TLS: refused, never a
# fallback to plain text; the server's refusal of STARTTLS is named.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/tls.sh"

make_tls_credentials
start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" memory 1M
expect_fail "nbds to a plain server" "$UNBD" info "nbds+unix:///?socket=$TESTDIR/sock&tls-certificates=$PKI"
grep -qx "unbd: the server on nbds+unix:///?socket=$TESTDIR/sock does not support TLS (it answered NBD_OPT_STARTTLS with NBD_REP_ERR_POLICY): refusing to go on without TLS" \
  "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "--tls=require to a plain server" "$UNBD" info --tls=require --tls-psk "$PKI/keys.psk" \
  --tls-username alice "nbd+unix:///?socket=$TESTDIR/sock"
grep -q "does not support TLS" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "list, nbds to a plain server" "$UNBD" info --list "nbds+unix:///?socket=$TESTDIR/sock&tls-certificates=$PKI"
grep -q "does not support TLS" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
