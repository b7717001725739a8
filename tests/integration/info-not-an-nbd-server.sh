#!/usr/bin/env bash
# Talking to something that is not an NBD server: a web server's greeting
# gives "bad magic", a server that hangs up at once says so.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

serve() {  # serve PORT BYTES: every client gets BYTES, then the socket closes
  "$PYTHON" - "$1" "$2" "$TESTDIR/ready.$1" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
open(sys.argv[3], "w").close()
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[2].encode())
    c.close()
PY
  cleanup_fn kill $!
  for _ in $(seq 50); do [ -e "$TESTDIR/ready.$1" ] && break; sleep 0.1; done
}

http=$(pick_port)
serve "$http" $'HTTP/1.0 400 Bad Request\r\n\r\n'
expect_fail "http server" "$UNBD" info "nbd://127.0.0.1:$http/"
grep -q "^unbd: bad magic 0x485454502f312e30 from nbd://127.0.0.1:$http/: not an NBD server$" "$STDERR" \
  || fail "unexpected message: $(cat "$STDERR")"

mute=$(pick_port)
serve "$mute" ""
expect_fail "hang-up server" "$UNBD" info "nbd://127.0.0.1:$mute/"
grep -q "^unbd: the server closed the connection before its greeting on nbd://127.0.0.1:$mute/" "$STDERR" \
  || fail "unexpected message: $(cat "$STDERR")"
