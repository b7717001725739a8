#!/bin/bash
# --zero-copy=on on a kernel that has UBLK_F_AUTO_BUF_REG attaches in a
# zero-copy mode (no silent fallback to copy), says why, and `unbd list`
# (JSON and table) shows the same mode; data goes through. On a kernel
# without it (6.12), --zero-copy=on is refused, names AUTO_BUF_REG and
# leaves nothing behind; the case then ends as skipped.
. "$(dirname "$0")/../lib.sh"

serve_unix mem memory 64M
if ! kernel_has AUTO_BUF_REG; then
  expect_fail "--zero-copy=on without AUTO_BUF_REG" "$UNBD" attach "$URI" --zero-copy=on
  grep -q AUTO_BUF_REG "$STDERR" || fail "the refusal does not name AUTO_BUF_REG: $(cat "$STDERR")"
  cat "$STDERR"
  expect_no_devices
  skip_part "zero copy with --zero-copy=on (no AUTO_BUF_REG, 6.16+; the refusal was checked)"
  exit 0
fi
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
