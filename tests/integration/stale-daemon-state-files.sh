#!/bin/bash
# State files whose daemon is gone or cannot be reached, on this host (no
# ublk needed: the devices they name do not exist here). A daemon that ran
# in a container and was killed recorded pid 1 of its namespace: `unbd list`
# says gone with pid 0 (not this namespace's pid 1), `stats` refuses at once,
# and `detach` forgets it at once, its socket file too. A state file whose
# pid is a live process of this namespace (same start time) but whose
# control socket is gone: every command refuses in one line, promptly, and
# nobody signals that process.
. "$(dirname "$0")/../functions.sh"
export UNBD_STATE_DIR=$TESTDIR/state
mkdir -p "$UNBD_STATE_DIR"

my_ns=$(stat -L -c %i /proc/self/ns/pid)
# Field 22 of /proc/PID/stat, counted after the ')' that ends the name.
start_time() { sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f20; }

# state ID PID PID_NS PID_START: a state file as a daemon writes it.
state() {
  printf '{"version":1,"id":%s,"dev":"/dev/ublkb%s","uri":"nbd://h/","pid":%s,"pid_ns":%s,"pid_start":%s}\n' \
    "$1" "$1" "$2" "$3" "$4" >"$UNBD_STATE_DIR/$1.json"
}

# 1. Killed in a container: pid 1 of another namespace, its socket file left behind.
state 1 1 $((my_ns + 1)) 12345
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$UNBD_STATE_DIR/1.sock"
[ -S "$UNBD_STATE_DIR/1.sock" ] || fail "could not leave a dead socket file"

# 2. Alive here, socket gone: a stuck daemon, or its socket file removed by hand.
sleep 300 &
stuck=$!
cleanup_fn "kill $stuck 2>/dev/null"
state 2 "$stuck" "$my_ns" "$(start_time "$stuck")"

# 3. The pid was reused by another process since (another start time): gone.
state 3 "$stuck" "$my_ns" 1

list=$("$UNBD" list --json 2>"$STDERR") || fail "unbd list failed: $(cat "$STDERR")"
field() { jq -r --argjson id "$1" ".[] | select(.id == \$id) | .$2" <<<"$list"; }
for id in 1 3; do
  [ "$(field $id daemon)" = gone ] && [ "$(field $id pid)" = 0 ] && [ "$(field $id daemon_running)" = false ] ||
    fail "device $id: list says daemon $(field $id daemon), pid $(field $id pid); want gone, 0"
done
[ "$(field 2 daemon)" = unreachable ] && [ "$(field 2 daemon_running)" = false ] ||
  fail "device 2: list says daemon $(field 2 daemon); want unreachable"
"$UNBD" list

# timed CMD...: CMD's exit status and stderr ($STDERR); it must take < 5 s.
timed() {
  local t0=$SECONDS status=0
  timeout 20 "$@" 2>"$STDERR" || status=$?
  [ $((SECONDS - t0)) -lt 5 ] || fail "'${*#"$UNBD" }' took $((SECONDS - t0)) s"
  [ "$(wc -l <"$STDERR")" -le 1 ] || fail "'${*#"$UNBD" }' said more than one line: $(cat "$STDERR")"
  return $status
}

timed "$UNBD" stats 1 && fail "stats of a dead daemon succeeded"
grep -q "device 1 has no running daemon" "$STDERR" || fail "stats 1: $(cat "$STDERR")"

for cmd in "detach 2" "stats 2" "resize 2" "recover 2" "restart 2"; do
  # shellcheck disable=SC2086
  timed "$UNBD" $cmd && fail "$cmd of an unreachable daemon succeeded"
  grep -q "runs but its control socket $UNBD_STATE_DIR/2.sock is gone" "$STDERR" ||
    fail "$cmd: $(cat "$STDERR")"
  kill -0 "$stuck" 2>/dev/null || fail "$cmd signalled process $stuck"
  [ -e "$UNBD_STATE_DIR/2.json" ] || fail "$cmd removed the state file of a running daemon"
done
echo "unreachable daemon: refused at once: $(cat "$STDERR")"

for id in 1 3; do
  timed "$UNBD" detach "$id" || fail "detach $id of a dead daemon failed: $(cat "$STDERR")"
  [ ! -e "$UNBD_STATE_DIR/$id.json" ] && [ ! -e "$UNBD_STATE_DIR/$id.sock" ] ||
    fail "detach $id left $(ls "$UNBD_STATE_DIR")"
done
kill -0 "$stuck" 2>/dev/null || fail "process $stuck was signalled"
echo "PASS: dead daemons' state files are forgotten at once, an unreachable daemon is refused at once"
