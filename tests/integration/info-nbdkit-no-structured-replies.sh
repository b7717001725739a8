#!/usr/bin/env bash
# nbdkit --no-sr refuses structured replies: unbd reports them off (and DF
# with them), like nbdinfo.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" --no-sr memory 1M
agree_with_nbdinfo "nbd+unix:///?socket=$TESTDIR/sock"
expect_field structured_replies false
expect_field can_df false
