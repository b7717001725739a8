# Helpers for the info-*.sh tests. Source after functions.sh.
#
#   agree_with_nbdinfo URI [--size=N]   unbd info --json and nbdinfo --json
#                             agree field by field; leaves unbd's JSON in $TESTDIR/unbd.json
#   size_after_go URI         the export size libnbd sees after NBD_OPT_GO (nbdinfo --size)
#   json_field KEY            prints KEY of $TESTDIR/unbd.json (Python repr-free: true/false/null/number/string)
#   wait_for_port PORT        waits until 127.0.0.1:PORT accepts connections
#   serve_scripted NAME ARGS...  support/scripted_server.py on $TESTDIR/NAME.sock
#                             announcing what ARGS say (--size, --flags, --block
#                             MIN,PREF,MAX, --close-after-handshake); sets URI

# The system python (python3-libnbd's) starts fastest and is the one CI has.
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

agree_with_nbdinfo() {
  local uri=$1; shift
  nbdinfo --json "$uri" >"$TESTDIR/nbdinfo.json" || fail "nbdinfo --json $uri failed"
  "$UNBD" info --json "$uri" >"$TESTDIR/unbd.json" || fail "unbd info --json $uri failed"
  "$PYTHON" "$UNBD_SOURCE_DIR/tests/integration/support/compare_info.py" \
    "$TESTDIR/nbdinfo.json" "$TESTDIR/unbd.json" "$@" || fail "unbd and nbdinfo disagree on $uri"
}

size_after_go() {
  nbdinfo --size "$1" || fail "nbdinfo --size $1 failed"
}

json_field() {
  "$PYTHON" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))' \
    "$TESTDIR/unbd.json" "$1"
}

expect_field() {
  local got
  got=$(json_field "$1")
  [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}

wait_for_port() {
  for _ in $(seq 100); do
    "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" \
      2>/dev/null && return 0
    sleep 0.1
  done
  fail "nothing listens on port $1"
}

serve_scripted() {
  local name=$1; shift
  "$PYTHON" "$UNBD_SOURCE_DIR/tests/integration/support/scripted_server.py" \
    --unix "$TESTDIR/$name.sock" --ready "$TESTDIR/$name.ready" "$@" &
  cleanup_fn kill $!
  for _ in $(seq 100); do [ -e "$TESTDIR/$name.ready" ] && break; sleep 0.1; done
  [ -e "$TESTDIR/$name.ready" ] || fail "the scripted server $name did not start"
  URI="nbd+unix:///?socket=$TESTDIR/$name.sock"
}
