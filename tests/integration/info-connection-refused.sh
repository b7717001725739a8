#!/usr/bin/env bash
# Nothing listens: one clear line naming the URI and the reason.
. "$(dirname "$0")/../functions.sh"

port=$(pick_port)
expect_fail "refused" "$UNBD" info "nbd://127.0.0.1:$port/"
grep -qx "unbd: cannot connect to nbd://127.0.0.1:$port/: Connection refused" "$STDERR" \
  || fail "unexpected message: $(cat "$STDERR")"
[ "$(wc -l <"$STDERR")" -eq 1 ] || fail "more than one line on stderr"
expect_fail "missing socket" "$UNBD" info "nbd+unix:///?socket=$TESTDIR/nosuch.sock"
grep -q "No such file or directory" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
