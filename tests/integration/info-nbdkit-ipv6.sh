#!/usr/bin/env bash
# An IPv6 literal URI (nbd://[::1]:PORT/) reaches nbdkit listening on ::1.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

if ! "$PYTHON" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
  echo "SKIP: this machine has no IPv6 loopback" >&2
  exit 77
fi
port=$(pick_port)
start_nbdkit -P "$TESTDIR/pid" -i ::1 -p "$port" memory 3M
agree_with_nbdinfo "nbd://[::1]:$port/"
expect_field size_bytes 3145728
