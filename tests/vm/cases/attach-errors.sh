#!/bin/bash
# attach fails with a message a person understands and leaves nothing
# behind: server unreachable, export missing, not root, bad options.
# Runs in the guest: tests/vm/run -- bash THIS.
. "$(dirname "$0")/../../functions.sh"
[ -e /dev/ublk-control ] || fail "/dev/ublk-control missing (not in the VM?)"
export UNBD_STATE_DIR=$TESTDIR/state
cleanup_fn '"$UNBD" detach --all'

port=$(pick_port)
start_nbdkit -P "$TESTDIR/nbdkit.pid" -i 127.0.0.1 -p "$port" \
  --filter=exportname memory 16M exportname=disk exportname-strict=true

nothing_left() {
  [ -z "$(ls /dev/ublkb* /dev/ublkc* 2>/dev/null)" ] || fail "$1: devices left: $(ls /dev/ublk[bc]*)"
  [ -z "$(ls "$UNBD_STATE_DIR"/*.json 2>/dev/null)" ] || fail "$1: state files left"
}

closed=$(pick_port)
expect_fail "unreachable server" "$UNBD" attach "nbd://127.0.0.1:$closed/disk"
grep -qi "refused" "$STDERR" || fail "unreachable: $(cat "$STDERR")"
nothing_left unreachable

expect_fail "missing export" "$UNBD" attach "nbd://127.0.0.1:$port/nope"
grep -q "does not exist" "$STDERR" || fail "missing export: $(cat "$STDERR")"
nothing_left "missing export"

expect_fail "not root" setpriv --reuid=65534 --regid=65534 --clear-groups "$UNBD" attach "nbd://127.0.0.1:$port/disk"
grep -q "root" "$STDERR" || fail "not root: $(cat "$STDERR")"
nothing_left "not root"

expect_fail "bad zero-copy mode" "$UNBD" attach "nbd://127.0.0.1:$port/disk" --zero-copy=maybe
expect_fail "depth 0" "$UNBD" attach "nbd://127.0.0.1:$port/disk" -d 0
nothing_left "bad options"

expect_fail "detach of nothing" "$UNBD" detach 7
grep -q "no unbd device 7" "$STDERR" || fail "detach: $(cat "$STDERR")"

# The good export works, so the failures above were the server's answers.
dev=$("$UNBD" attach "nbd://127.0.0.1:$port/disk") || fail "attach of the existing export"
[ -b "$dev" ] || fail "$dev missing"
expect_fail "id in use" "$UNBD" attach "nbd://127.0.0.1:$port/disk" -n "${dev#/dev/ublkb}"
grep -q "already exists" "$STDERR" || fail "id in use: $(cat "$STDERR")"
[ "$(ls /dev/ublkb* | wc -l)" = 1 ] || fail "a second device appeared: $(ls /dev/ublkb*)"
"$UNBD" detach "$dev"
nothing_left "after detach"
echo "PASS"
