#!/usr/bin/env bash
# nbds:// with a pre-shared key (psktool's file) against nbdkit --tls=require
# --tls-psk: the user name from the URI, from tls-username or --tls-username;
# a wrong key, a user the server does not know and a user missing from the
# file each say so in one line.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"
. "$(dirname "$0")/support/tls.sh"

make_tls_credentials
start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" --tls=require --tls-psk="$PKI/keys.psk" memory 1M
base="nbds+unix:///?socket=$TESTDIR/sock"

agree_with_nbdinfo "nbds+unix://alice@/?socket=$TESTDIR/sock&tls-psk-file=$PKI/keys.psk"
json_field tls | grep -q '^"userspace (TLSv1\.3, psk, ' || fail "tls field: $(json_field tls)"
"$UNBD" info --tls-psk "$PKI/keys.psk" --tls-username alice "$base" | grep -q $'^\ttls: userspace (TLSv1.3, psk, ' ||
  fail "--tls-psk --tls-username"
port=$(pick_port)
start_nbdkit -P "$TESTDIR/pid-tcp" -i 127.0.0.1 -p "$port" --tls=require --tls-psk="$PKI/keys.psk" memory 1M
"$UNBD" info "nbds://alice@127.0.0.1:$port/?tls-psk-file=$PKI/keys.psk" >/dev/null || fail "user name in the URI"

expect_fail "wrong key" "$UNBD" info --tls-psk "$PKI/wrong.psk" --tls-username alice "$base"
grep -qx "unbd: the server refused the pre-shared key of user 'alice' (nbds+unix:///?socket=$TESTDIR/sock): wrong key, or a user it does not know (it closed the connection during the TLS handshake)" \
  "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

sed 's/^alice:/bob:/' "$PKI/keys.psk" >"$TESTDIR/bob.psk"
expect_fail "unknown user" "$UNBD" info --tls-psk "$TESTDIR/bob.psk" --tls-username bob "$base"
grep -q "the server refused the pre-shared key of user 'bob'" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

expect_fail "user not in the file" "$UNBD" info --tls-psk "$PKI/keys.psk" --tls-username carol "$base"
grep -qx "unbd: user 'carol' is not in the PSK file $PKI/keys.psk (give another with --tls-username)" "$STDERR" ||
  fail "unexpected message: $(cat "$STDERR")"

expect_fail "missing file" "$UNBD" info --tls-psk "$TESTDIR/none.psk" --tls-username alice "$base"
grep -q "cannot read the PSK file $TESTDIR/none.psk" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

# TLS 1.2 (the server limited to it: GnuTLS's system priority file): the
# TLS 1.2 PSK suites, and a wrong key still says so.
printf '[overrides]\ndisabled-version = tls1.3\n' >"$TESTDIR/tls12.conf"
GNUTLS_SYSTEM_PRIORITY_FILE=$TESTDIR/tls12.conf start_nbdkit -P "$TESTDIR/pid12" -U "$TESTDIR/sock12" --tls=require \
  --tls-psk="$PKI/keys.psk" memory 1M
"$UNBD" info --tls-psk "$PKI/keys.psk" --tls-username alice "nbds+unix:///?socket=$TESTDIR/sock12" >"$TESTDIR/out" ||
  fail "TLS 1.2 PSK"
grep -q $'^\ttls: userspace (TLSv1.2, psk, ' "$TESTDIR/out" || fail "not TLS 1.2: $(cat "$TESTDIR/out")"
expect_fail "TLS 1.2, wrong key" "$UNBD" info --tls-psk "$PKI/wrong.psk" --tls-username alice \
  "nbds+unix:///?socket=$TESTDIR/sock12"
grep -q "the server refused the pre-shared key of user 'alice'" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"

# A relative PSK file name is kept as an absolute one (the daemon runs in /).
(cd "$PKI" && "$UNBD" info --tls-psk keys.psk --tls-username alice "$base") | grep -qF "tls-psk-file=$PKI/keys.psk" ||
  fail "relative --tls-psk not made absolute"
