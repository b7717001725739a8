#!/usr/bin/env bash
# A server that accepts and never speaks: the handshake timeout fires, on
# time, with a message that says what was awaited.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

port=$(pick_port)
"$PYTHON" - "$port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
conns = []
while True:
    c, _ = s.accept()
    conns.append(c)  # keep it open, say nothing
PY
cleanup_fn kill $!
for _ in $(seq 50); do ss -ltn | grep -q ":$port " && break; sleep 0.1; done

start=$(date +%s%N)
expect_fail "silent server" "$UNBD" info --handshake-timeout 1 "nbd://127.0.0.1:$port/"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep -qx "unbd: timed out after 1s waiting for the server's handshake on nbd://127.0.0.1:$port/" "$STDERR" \
  || fail "unexpected message: $(cat "$STDERR")"
[ "$elapsed_ms" -ge 900 ] && [ "$elapsed_ms" -lt 5000 ] || fail "timeout took ${elapsed_ms}ms, expected ~1000"
