#!/usr/bin/env bash
# Servers limited to NBD_OPT_EXPORT_NAME (nbdkit --mask-handshake): plain
# newstyle with and without NO_ZEROES. unbd still learns size and flags.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

for mask in 0 2; do
  start_nbdkit -P "$TESTDIR/pid$mask" -U "$TESTDIR/sock$mask" --mask-handshake=$mask memory 5M
  agree_with_nbdinfo "nbd+unix:///?socket=$TESTDIR/sock$mask"
  expect_field size_bytes 5242880
  expect_field structured_replies false
done
