#!/usr/bin/env bash
# nbd-server (the reference server) from a generated config, over TCP:
# flush, fua, trim and rotational are on in the config and must show.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

truncate -s 8M "$TESTDIR/disk.img"
start_nbd_server "$TESTDIR/disk.img" disk flush=true fua=true trim=true rotational=true
port=$NBD_SERVER_PORT

uri="nbd://127.0.0.1:$port/disk"
agree_with_nbdinfo "$uri" --size="$(size_after_go "$uri")"
expect_field size_bytes 8388608
expect_field can_flush true
expect_field can_fua true
expect_field can_trim true
expect_field rotational true

"$UNBD" info --list "nbd://127.0.0.1:$port/" >"$TESTDIR/list" || fail "unbd info --list failed"
grep -qx 'export="disk"' "$TESTDIR/list" || fail "list lacks disk: $(cat "$TESTDIR/list")"
