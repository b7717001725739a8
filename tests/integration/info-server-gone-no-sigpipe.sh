#!/usr/bin/env bash
# A server that goes away right after the handshake: `unbd info` still
# prints what it was told, and its goodbye (NBD_CMD_DISC) into the dead
# socket fails quietly instead of killing unbd with SIGPIPE (exit 141, no
# message: issue 11). An export size above 2^63-1 is refused with one line.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

serve_scripted gone --size 1048576 --close-after-handshake
rc=0; "$UNBD" info "$URI" >"$TESTDIR/out" 2>"$STDERR" || rc=$?
[ $rc = 0 ] || fail "unbd info against a vanished server: exit status $rc, stderr: $(cat "$STDERR")"
grep -q "export-size: 1048576 " "$TESTDIR/out" || fail "no size printed: $(cat "$TESTDIR/out")"

serve_scripted huge --size 9223372036854779904 --close-after-handshake
rc=0; "$UNBD" info "$URI" >"$TESTDIR/out" 2>"$STDERR" || rc=$?
[ $rc = 1 ] || fail "unbd info against a 2^63+4096-byte export: exit status $rc, expected 1"
[ "$(wc -l <"$STDERR")" = 1 ] || fail "expected one line on stderr, got: $(cat "$STDERR")"
grep -q "^unbd: the server on $URI announces an export of 9223372036854779904 bytes, more than the 2^63-1" \
  "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
