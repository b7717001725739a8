#!/usr/bin/env bash
# A listener whose accept queue is full never completes new connections
# (Linux drops the SYNs): the connect timeout fires, on time, and says so.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

port=$(pick_port)
"$PYTHON" - "$port" "$TESTDIR/ready" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(0)  # never accept; fill the queue ourselves
fill = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", int(sys.argv[1])))
    fill.append(c)
time.sleep(0.3)
open(sys.argv[2], "w").close()
time.sleep(60)
PY
cleanup_fn kill $!
for _ in $(seq 50); do [ -e "$TESTDIR/ready" ] && break; sleep 0.1; done

start=$(date +%s%N)
expect_fail "full accept queue" "$UNBD" info --connect-timeout 1 "nbd://127.0.0.1:$port/"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep -qx "unbd: timed out after 1s connecting to nbd://127.0.0.1:$port/" "$STDERR" \
  || fail "unexpected message: $(cat "$STDERR")"
[ "$elapsed_ms" -ge 900 ] && [ "$elapsed_ms" -lt 5000 ] || fail "timeout took ${elapsed_ms}ms, expected ~1000"
