#!/usr/bin/env bash
# nbds:// and nbds+unix:// are recognised and refused before any connection.
. "$(dirname "$0")/../functions.sh"

expect_fail "nbds" "$UNBD" info nbds://127.0.0.1/x
grep -q "TLS is not supported yet" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "nbds+unix" "$UNBD" info "nbds+unix:///x?socket=/tmp/none"
grep -q "TLS is not supported yet" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
expect_fail "bad uri" "$UNBD" info "nbd://h:99999/"
grep -q "bad port '99999'" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
