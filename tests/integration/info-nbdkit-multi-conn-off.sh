#!/usr/bin/env bash
# The multi-conn filter in disable mode clears CAN_MULTI_CONN.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" --filter=multi-conn memory 1M multi-conn-mode=disable
agree_with_nbdinfo "nbd+unix:///?socket=$TESTDIR/sock"
expect_field can_multi_conn false
