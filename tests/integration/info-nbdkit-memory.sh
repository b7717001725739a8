#!/usr/bin/env bash
# unbd info on a writable nbdkit memory disk over a Unix socket: human output
# and JSON, which must agree with nbdinfo field by field.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" memory 1M
uri="nbd+unix:///?socket=$TESTDIR/sock"

agree_with_nbdinfo "$uri"
expect_field size_bytes 1048576
expect_field read_only false
expect_field can_multi_conn true
expect_field structured_replies true
expect_field description null

"$UNBD" info "$uri" >"$TESTDIR/out" || fail "unbd info failed"
grep -q 'export-size: 1048576 (1M)' "$TESTDIR/out" || fail "human output lacks the size: $(cat "$TESTDIR/out")"
grep -q 'is_read_only: false' "$TESTDIR/out" || fail "human output lacks is_read_only"
