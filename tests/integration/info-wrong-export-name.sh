#!/usr/bin/env bash
# Asking for an export the server does not have: "export 'x' does not exist".
# nbdkit (exportname-strict) and qemu-nbd both answer NBD_REP_ERR_UNKNOWN.
. "$(dirname "$0")/../functions.sh"

start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" --filter=exportname memory 1M \
  exportname=good exportname-strict=true
uri="nbd+unix:///bad?socket=$TESTDIR/sock"
expect_fail "nbdkit wrong name" "$UNBD" info "$uri"
grep -q "^unbd: export 'bad' does not exist on $uri" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
"$UNBD" info "nbd+unix:///good?socket=$TESTDIR/sock" >/dev/null || fail "the right name should work"

truncate -s 1M "$TESTDIR/disk.img"
qemu-nbd -f raw -t --fork --pid-file="$TESTDIR/qpid" -k "$TESTDIR/qsock" -x right "$TESTDIR/disk.img" \
  || fail "qemu-nbd failed to start"
cleanup_fn _kill_pidfile "$TESTDIR/qpid"
expect_fail "qemu-nbd wrong name" "$UNBD" info "nbd+unix:///wrong?socket=$TESTDIR/qsock"
grep -q "^unbd: export 'wrong' does not exist on" "$STDERR" || fail "unexpected message: $(cat "$STDERR")"
