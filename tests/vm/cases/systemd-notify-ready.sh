#!/bin/bash
# `unbd attach --foreground` under a NOTIFY_SOCKET (what systemd's
# Type=notify gives it): READY=1 arrives only once /dev/ublkbN exists and is
# live, with MAINPID; SIGTERM (systemctl stop) sends STOPPING=1 and detaches.
. "$(dirname "$0")/../lib.sh"
serve_unix disk memory 64M
export NOTIFY_SOCKET=$TESTDIR/notify.sock
# The listener records each datagram with whether the device existed then.
/usr/bin/python3 - "$NOTIFY_SOCKET" "$TESTDIR/notify.log" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        live = os.path.exists("/dev/ublkb7")
        log.write(f"device={'yes' if live else 'no'} {msg!r}\n")
        if "STOPPING=1" in msg:
            break
PY
listener=$!
cleanup_fn "kill $listener 2>/dev/null"
wait_until 10 '[ -S "$NOTIFY_SOCKET" ]' || fail "the test's notify listener did not start"
"$UNBD" attach --foreground -n 7 "$URI" >"$TESTDIR/fg.out" 2>"$TESTDIR/fg.err" &
daemon=$!
ID=7
cleanup_fn _detach_if_attached 7
wait_until 60 'grep -q READY=1 "$TESTDIR/notify.log" 2>/dev/null' || {
  cat "$TESTDIR/fg.err" >&2; fail "no READY=1 within 60 s"; }
ready=$(grep READY=1 "$TESTDIR/notify.log")
echo "got: $ready"
[[ $ready == device=yes* ]] || fail "READY=1 came before /dev/ublkb7 existed: $ready"
[[ $ready == *"MAINPID=$daemon"* ]] || fail "READY=1 without MAINPID=$daemon: $ready"
[ "$(device_field state)" = live ] || fail "READY=1 but the device is '$(device_field state)'"
kill -TERM "$daemon"
wait "$daemon" || fail "the foreground daemon exited with $? after SIGTERM"
grep -q STOPPING=1 "$TESTDIR/notify.log" || fail "no STOPPING=1 on SIGTERM: $(cat "$TESTDIR/notify.log")"
expect_no_devices
