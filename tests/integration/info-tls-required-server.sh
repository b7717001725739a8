#!/usr/bin/env bash
# A server that insists on TLS (nbdkit --tls=require with a PSK) answers
# NBD_REP_ERR_TLS_REQD to an nbd:// client: unbd says the server requires TLS
# and how to ask for it, for info and --list.
. "$(dirname "$0")/../functions.sh"

printf 'alice:%s\n' 0123456789abcdef0123456789abcdef >"$TESTDIR/psk"
start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" --tls=require --tls-psk="$TESTDIR/psk" memory 1M
uri="nbd+unix:///?socket=$TESTDIR/sock"
expect_fail "tls required" "$UNBD" info "$uri"
grep -qx "unbd: the server requires TLS ($uri): use an nbds:// URI or --tls=require" "$STDERR" \
  || fail "unexpected message: $(cat "$STDERR")"
expect_fail "tls required, list" "$UNBD" info --list "$uri"
grep -q "the server requires TLS" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
