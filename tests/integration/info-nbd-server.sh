#!/usr/bin/env bash
# nbd-server (the reference server) from a generated config, over TCP:
# flush, fua, trim and rotational are on in the config and must show.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

truncate -s 8M "$TESTDIR/disk.img"
port=$(pick_port)
cat >"$TESTDIR/config" <<CFG
[generic]
port = $port
listenaddr = 127.0.0.1
allowlist = true
[disk]
exportname = $TESTDIR/disk.img
flush = true
fua = true
trim = true
rotational = true
CFG
# It daemonizes (forking per client) and writes its pid file.
nbd-server -C "$TESTDIR/config" -p "$TESTDIR/pid" 2>"$TESTDIR/server.log" || fail "nbd-server failed to start"
for _ in $(seq 50); do [ -s "$TESTDIR/pid" ] && break; sleep 0.1; done
cleanup_fn _kill_pidfile "$TESTDIR/pid"
wait_for_port "$port"

uri="nbd://127.0.0.1:$port/disk"
agree_with_nbdinfo "$uri" --size="$(size_after_go "$uri")"
expect_field size_bytes 8388608
expect_field can_flush true
expect_field can_fua true
expect_field can_trim true
expect_field rotational true

"$UNBD" info --list "nbd://127.0.0.1:$port/" >"$TESTDIR/list" || fail "unbd info --list failed"
grep -qx 'export="disk"' "$TESTDIR/list" || fail "list lacks disk: $(cat "$TESTDIR/list")"
