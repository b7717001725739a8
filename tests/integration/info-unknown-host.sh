#!/usr/bin/env bash
# A host name that cannot resolve (.invalid is reserved, RFC 2606).
. "$(dirname "$0")/../functions.sh"

expect_fail "unknown host" "$UNBD" info --connect-timeout 5 nbd://nosuch.invalid/
grep -q "^unbd: cannot resolve host 'nosuch.invalid'" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
