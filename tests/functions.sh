# Shared helpers for the shell tests, in the spirit of nbdkit's
# tests/functions.sh. Source it first:  . "$(dirname "$0")/../functions.sh"
#
#   UNBD            the unbd binary (set by CTest; falls back to build/default)
#   cleanup_fn CMD  run CMD (a function name + args) on exit, last added first
#   start_nbdkit -P PIDFILE ARGS...   nbdkit in the background; waits for the
#                   pidfile; killed on exit
#   pick_port       a free TCP port on 127.0.0.1
#   start_nbd_server FILE NAME [KEY=VALUE...]   nbd-server exporting FILE as
#                   NAME on 127.0.0.1:$NBD_SERVER_PORT (extra export settings
#                   go to the export's section); waits until it listens;
#                   killed on exit
#   fail MSG        print "FAIL: MSG" and exit 1
#   expect_fail DESC CMD...   CMD must exit non-zero; its stderr goes to $STDERR
#   trim TEXT       TEXT without leading and trailing blanks (table cells)
set -euo pipefail

: "${UNBD_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${UNBD_BUILD_DIR:=$UNBD_SOURCE_DIR/build/default}"
: "${UNBD:=$UNBD_BUILD_DIR/unbd}"
export UNBD UNBD_SOURCE_DIR UNBD_BUILD_DIR

TESTDIR=$(mktemp -d /tmp/unbd-test.XXXXXX)
STDERR=$TESTDIR/stderr
_cleanups=()
cleanup_fn() { _cleanups=("$*" "${_cleanups[@]}"); }
_run_cleanups() {
  local rc=$? c
  for c in "${_cleanups[@]}"; do eval "$c" || true; done
  rm -rf "$TESTDIR"
  exit $rc
}
trap _run_cleanups EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# fio without its progress line: it rewrites one line with \r for minutes,
# which buries a failing case's messages in CI's excerpt of the log.
fio() { command fio --eta=never "$@"; }

_kill_pidfile() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

start_nbdkit() {
  [ "$1" = -P ] || fail "start_nbdkit: first argument must be -P PIDFILE"
  local pidfile=$2; shift 2
  nbdkit -P "$pidfile" "$@" || fail "nbdkit $* failed to start"
  for _ in $(seq 600); do [ -s "$pidfile" ] && break; sleep 0.1; done
  [ -s "$pidfile" ] || fail "nbdkit did not write $pidfile"
  cleanup_fn _kill_pidfile "$pidfile"
}

pick_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_nbd_server() {
  local file=$1 name=$2 setting; shift 2
  NBD_SERVER_PORT=$(pick_port)
  {
    printf '[generic]\nport = %s\nlistenaddr = 127.0.0.1\nallowlist = true\n[%s]\nexportname = %s\n' \
      "$NBD_SERVER_PORT" "$name" "$file"
    for setting in "$@"; do printf '%s\n' "${setting/=/ = }"; done
  } >"$TESTDIR/nbd-server.conf"
  # It daemonizes (forking per client) and writes its pid file.
  nbd-server -C "$TESTDIR/nbd-server.conf" -p "$TESTDIR/nbd-server.pid" 2>"$TESTDIR/nbd-server.log" ||
    fail "nbd-server failed to start: $(cat "$TESTDIR/nbd-server.log")"
  for _ in $(seq 50); do [ -s "$TESTDIR/nbd-server.pid" ] && break; sleep 0.1; done
  cleanup_fn _kill_pidfile "$TESTDIR/nbd-server.pid"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$NBD_SERVER_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  fail "nbd-server does not listen on port $NBD_SERVER_PORT"
}

expect_fail() {
  local desc=$1; shift
  if "$@" 2>"$STDERR"; then fail "$desc: '$*' succeeded, expected failure"; fi
  [ -s "$STDERR" ] || fail "$desc: '$*' failed without saying why on stderr"
}

trim() {
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  printf '%s' "${s%"${s##*[![:space:]]}"}"
}
