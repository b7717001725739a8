#!/bin/bash
# --zero-copy=on on a kernel that has UBLK_F_AUTO_BUF_REG attaches in a
# zero-copy mode (no silent fallback to copy), says why, and `unbd list`
# (JSON and table) shows the same mode; data goes through.
. "$(dirname "$0")/../lib.sh"

serve_unix mem memory 64M
attach "$URI" --zero-copy=on
expect_zero_copy on
reason=$(jq -r .zero_copy_reason <<<"$ATTACH_JSON")
[[ $reason == *AUTO_BUF_REG* ]] || fail "zero_copy_reason does not name AUTO_BUF_REG: $reason"
"$UNBD" list >"$TESTDIR/list.txt"
cat "$TESTDIR/list.txt"
grep -E "^$ID +$DEV +live .* $ZC " "$TESTDIR/list.txt" >/dev/null ||
  fail "unbd list does not show $DEV live with $ZC"
head -c 1M /dev/urandom >"$TESTDIR/data"
dd if="$TESTDIR/data" of="$DEV" bs=64k oflag=direct status=none || fail "write to $DEV"
dd if="$DEV" of="$TESTDIR/back" bs=64k count=16 iflag=direct status=none || fail "read $DEV"
cmp "$TESTDIR/data" "$TESTDIR/back" || fail "read back differs with --zero-copy=on"
detach "$ID"
expect_no_devices
