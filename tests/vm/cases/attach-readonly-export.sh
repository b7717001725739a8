#!/bin/bash
# A read-only export (nbdkit -r) becomes a read-only device: sysfs ro is 1,
# attach --json says read_only, writes fail and the export is unchanged;
# reads work. `--read-only` on a writable export does the same.
. "$(dirname "$0")/../lib.sh"

expect_readonly_device() {  # what
  [ "$(jq -r .read_only <<<"$ATTACH_JSON")" = true ] || fail "$1: attach --json read_only is not true"
  [ "$(sysfs "$DEV" ro)" = 1 ] || fail "$1: /sys/block/$(basename "$DEV")/ro is not 1"
  [ "$(blockdev --getro "$DEV")" = 1 ] || fail "$1: blockdev --getro is not 1"
  if dd if=/dev/zero of="$DEV" bs=4096 count=1 oflag=direct status=none 2>"$STDERR"; then
    fail "$1: a write to $DEV succeeded"
  fi
  echo "$1: write refused: $(cat "$STDERR")"
  dd if="$DEV" of=/dev/null bs=1M iflag=direct status=none || fail "$1: reading $DEV failed"
}

# Known content: 0xAB in the first 4 KiB must survive the write attempts.
pattern_sha=$(head -c 4096 /dev/zero | tr '\0' '\253' | sha256sum | cut -d' ' -f1)
first_block_sha() {
  nbdsh -u "$1" -c 'import hashlib; print(hashlib.sha256(h.pread(4096, 0)).hexdigest())'
}

serve_unix ro data '( 0xab )*4096' size=64M -r
attach "$URI"
expect_zero_copy auto
expect_readonly_device "nbdkit -r"
detach "$ID"
[ "$(first_block_sha "$URI")" = "$pattern_sha" ] || fail "the read-only export changed"

serve_unix rw data '( 0xab )*4096' size=64M
attach "$URI" --read-only --zero-copy=off
expect_zero_copy off
expect_readonly_device "--read-only"
detach "$ID"
[ "$(first_block_sha "$URI")" = "$pattern_sha" ] || fail "the export behind --read-only changed"
expect_no_devices
