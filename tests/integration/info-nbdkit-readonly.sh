#!/usr/bin/env bash
# nbdkit -r over TCP: the export is read-only and unbd says so, like nbdinfo.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

port=$(pick_port)
start_nbdkit -P "$TESTDIR/pid" -p "$port" -i 127.0.0.1 -r memory 2M
agree_with_nbdinfo "nbd://127.0.0.1:$port/"
expect_field read_only true
expect_field size_bytes 2097152
