#!/usr/bin/env bash
# An oldstyle server (nbdkit -o) is refused with a clear reason.
. "$(dirname "$0")/../functions.sh"

start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" -o memory 1M
expect_fail "oldstyle" "$UNBD" info "nbd+unix:///?socket=$TESTDIR/sock"
grep -q "oldstyle NBD handshake" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
