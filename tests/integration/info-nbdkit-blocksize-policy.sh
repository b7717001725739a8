#!/usr/bin/env bash
# nbdkit blocksize-policy with a 4096-byte minimum: NBD_INFO_BLOCK_SIZE is
# advertised and reported exactly as nbdinfo reports it.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" --filter=blocksize-policy memory 1M \
  blocksize-minimum=4096 blocksize-preferred=65536 blocksize-maximum=1M
agree_with_nbdinfo "nbd+unix:///?socket=$TESTDIR/sock"
expect_field block_size_advertised true
expect_field block_size_min 4096
expect_field block_size_preferred 65536
expect_field block_size_max 1048576
