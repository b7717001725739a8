#!/bin/bash
# A daemon inside a pid namespace (a container: `unshare --pid --fork
# --mount-proc`, the daemon is the namespace's pid 1 and records pid 1) is
# found from the root namespace through its control socket: `unbd list`
# shows it running with its root-namespace pid (SO_PEERCRED), `unbd stats`
# answers, and `unbd detach` from the root namespace is prompt and leaves no
# state file, socket or /dev/ublk* node. Then the same with the namespace's
# init SIGKILLed: `unbd list` says the daemon is gone (whatever runs as pid
# 1 here), `unbd detach` cleans up promptly; and a fresh container's
# `unbd attach -n ID` of the same URI recovers a device its killed
# predecessor left.
. "$(dirname "$0")/../lib.sh"
command -v unshare >/dev/null || fail "unshare (util-linux) missing in the guest"

serve_unix disk memory 64M

# in_namespace NAME ARGS...: `unbd attach --foreground --json ARGS` as pid 1
# of a new pid namespace, in the background. Waits until the device is
# live; sets NS_PID (unshare's pid), DAEMON (the daemon's pid here), ID.
in_namespace() {
  local name=$1 out=$TESTDIR/$1.out; shift
  unshare --pid --fork --mount-proc "$UNBD" attach --foreground --json "$@" >"$out" 2>"$TESTDIR/$name.err" &
  NS_PID=$!
  cleanup_fn "kill -9 $NS_PID 2>/dev/null"
  wait_until 60 '[ -s "$out" ] || ! kill -0 $NS_PID 2>/dev/null' || fail "$name: no device within 60 s"
  [ -s "$out" ] || { cat "$TESTDIR/$name.err" >&2; fail "$name: unbd attach in the namespace failed"; }
  ID=$(jq -er .id "$out") || fail "$name: attach --json printed $(cat "$out")"
  cleanup_fn _detach_if_attached "$ID"
  DAEMON=$(cat "/proc/$NS_PID/task/$NS_PID/children" 2>/dev/null || pgrep -P "$NS_PID")
  DAEMON=${DAEMON%% *}
  [ -n "$DAEMON" ] || fail "$name: cannot find the daemon (the child of unshare $NS_PID)"
  grep -qE "^NSpid:\s+$DAEMON\s+1$" "/proc/$DAEMON/status" ||
    fail "$name: the daemon $DAEMON is not pid 1 of its namespace: $(grep NSpid "/proc/$DAEMON/status")"
  [ "$(jq -r .pid "$STATE_DIR/$ID.json")" = 1 ] ||
    fail "$name: the state file says pid $(jq -r .pid "$STATE_DIR/$ID.json"), not the namespace's 1"
  [ -S "$STATE_DIR/$ID.sock" ] || fail "$name: no control socket $STATE_DIR/$ID.sock"
  echo "$name: /dev/ublkb$ID served by pid $DAEMON here, pid 1 in its namespace"
}

# timed_detach: `unbd detach $ID` from here, within 20 s, leaving nothing.
timed_detach() {
  local t0
  t0=$(now)
  timeout 60 "$UNBD" detach "$ID" || fail "unbd detach $ID failed (status $?) after $(since "$t0") s"
  local took
  took=$(since "$t0")
  [ "${took%.*}" -lt 20 ] || fail "unbd detach $ID took $took s (the namespace's pid was signalled?)"
  for f in "$STATE_DIR/$ID.json" "$STATE_DIR/$ID.sock" "/dev/ublkb$ID" "/dev/ublkc$ID"; do
    [ ! -e "$f" ] || fail "$f still exists after unbd detach"
  done
  echo "unbd detach $ID from the root namespace: $took s"
}

# 1. A live daemon in a namespace.
in_namespace live "$URI" -q 2
[ "$(device_field daemon)" = running ] || fail "unbd list: daemon '$(device_field daemon)', not running"
[ "$(device_field pid)" = "$DAEMON" ] || fail "unbd list: pid $(device_field pid), not $DAEMON (the root namespace's)"
[ "$(device_field state)" = live ] || fail "unbd list: state '$(device_field state)', not live"
"$UNBD" list
dd if="/dev/ublkb$ID" of=/dev/null bs=64k count=16 iflag=direct status=none
dd if=/dev/zero of="/dev/ublkb$ID" bs=4k count=8 oflag=direct status=none
stats=$("$UNBD" stats "$ID" --json) || fail "unbd stats $ID --json failed"
jq -e --argjson pid "$DAEMON" '.pid == $pid and .io.reads >= 16 and .io.read_bytes >= 1048576
  and .io.writes >= 8 and .io.errors == 0 and (.queues | length) == 2 and .connection == "connected"' \
  <<<"$stats" >/dev/null || fail "unbd stats --json: $stats"
"$UNBD" stats "/dev/ublkb$ID" | tee "$TESTDIR/stats.txt"
grep -qE "^  reads +[1-9]" "$TESTDIR/stats.txt" || fail "unbd stats shows no reads"
timed_detach
wait_until 20 '! kill -0 $NS_PID 2>/dev/null' || fail "the namespace's daemon still runs after detach"
wait $NS_PID || fail "unbd attach --foreground in the namespace exited with status $?"

# 2. The namespace's init (the daemon) SIGKILLed: a dead device, detached from here.
in_namespace killed "$URI"
kill -9 "$DAEMON"
wait_until 20 '! kill -0 $DAEMON 2>/dev/null' || fail "daemon $DAEMON survived SIGKILL"
wait $NS_PID 2>/dev/null || true
[ -S "$STATE_DIR/$ID.sock" ] || fail "expected the killed daemon's socket file to stay behind"
wait_until 20 '[ "$(device_field daemon)" = gone ]' || fail "unbd list: daemon '$(device_field daemon)', not gone"
[ "$(device_field pid)" = 0 ] || fail "unbd list shows pid $(device_field pid) for a dead daemon"
wait_until 30 '[ "$(device_field state)" = quiesced ]' || fail "unbd list: state '$(device_field state)', not quiesced"
"$UNBD" list
expect_fail "unbd stats of a dead daemon" "$UNBD" stats "$ID"
grep -q "no running daemon" "$STDERR" || fail "unbd stats of a dead daemon said: $(cat "$STDERR")"
timed_detach

# 3. Killed again; a fresh container attaches the same URI to the same id: recovered.
in_namespace first "$URI"
dd if=/dev/urandom of="$TESTDIR/block" bs=4k count=1 status=none
dd if="$TESTDIR/block" of="/dev/ublkb$ID" bs=4k count=1 oflag=direct conv=fsync status=none
kill -9 "$DAEMON"
wait_until 20 '! kill -0 $DAEMON 2>/dev/null' || fail "daemon $DAEMON survived SIGKILL"
wait $NS_PID 2>/dev/null || true
first_id=$ID
wait_until 30 '[ "$(device_field state)" = quiesced ]' || fail "state '$(device_field state)', not quiesced"
in_namespace second "$URI" -n "$first_id"
[ "$ID" = "$first_id" ] || fail "the fresh container got device $ID, not $first_id"
grep -q "recovering it" "$TESTDIR/second.err" || fail "attach -n $ID did not recover: $(cat "$TESTDIR/second.err")"
[ "$(device_field daemon)" = running ] && [ "$(device_field pid)" = "$DAEMON" ] ||
  fail "after recovery unbd list says daemon $(device_field daemon), pid $(device_field pid) (want $DAEMON)"
dd if="/dev/ublkb$ID" of="$TESTDIR/block.back" bs=4k count=1 iflag=direct status=none
cmp "$TESTDIR/block.back" "$TESTDIR/block" ||
  fail "the block written before the kill reads back different after recovery"
timed_detach
wait_until 20 '! kill -0 $NS_PID 2>/dev/null' || fail "the recovered daemon still runs after detach"
expect_no_devices "$first_id.log"
echo "PASS: control socket across pid namespaces (live, killed, recovered)"
