# The table format of the bad-input tests (tests/integration/cli-bad-input.sh
# on the host, tests/vm/cases/cli-bad-input.sh with real ublk devices).
# Source after functions.sh (and lib.sh in the VM).
#
# One row per wrong use of the CLI:
#   "what | exit status | words on stderr | command"
# The command (eval'ed, so it may use variables) must
#   - exit with that status (README "Exit status", `unbd --help`),
#   - print exactly one line on stderr, containing the words (grep -F),
#   - print nothing on stdout,
#   - leave nothing behind: no new state or log file in $UNBD_STATE_DIR, no
#     new /dev/ublkb* or /dev/ublkc* node, no new unbd process running with
#     this state directory (a daemon).
#
#   bad_input_baseline          remember what exists now (call before the rows)
#   check_bad_input ROW...      run the rows; fail at the first that misbehaves

_bad_input_snapshot() {
  ls -A "$UNBD_STATE_DIR" 2>/dev/null || true
  ls /dev/ublkb* /dev/ublkc* 2>/dev/null || true
}

# Processes started with our state directory in their environment: a daemon
# a failed command left behind (our own shell and its children excepted).
_bad_input_daemons() {
  local f pid
  for f in /proc/[0-9]*/environ; do
    pid=${f#/proc/}; pid=${pid%/environ}
    [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ] && continue
    grep -qzx "UNBD_STATE_DIR=$UNBD_STATE_DIR" "$f" 2>/dev/null || continue
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = unbd ] && echo "$pid"
  done
  return 0
}

bad_input_baseline() {
  [ -n "${UNBD_STATE_DIR:-}" ] || fail "bad_input_baseline: set UNBD_STATE_DIR to a directory of the test's own"
  _bad_input_snapshot >"$TESTDIR/bad-input.before"
  _bad_input_daemons >"$TESTDIR/bad-input.daemons"
}

check_bad_input() {
  local row what want words cmd rc left
  for row in "$@"; do
    IFS='|' read -r what want words cmd <<<"$row"
    what=$(trim "$what"); want=$(trim "$want"); words=$(trim "$words")
    rc=0; eval "$cmd" >"$TESTDIR/bad-input.out" 2>"$STDERR" </dev/null || rc=$?
    [ "$rc" = "$want" ] || fail "$what: exit status $rc, expected $want; stderr: $(cat "$STDERR")"
    [ "$(wc -l <"$STDERR")" = 1 ] || fail "$what: expected one line on stderr, got: $(cat "$STDERR")"
    grep -qF -- "$words" "$STDERR" || fail "$what: stderr lacks '$words': $(cat "$STDERR")"
    [ ! -s "$TESTDIR/bad-input.out" ] || fail "$what: printed on stdout: $(cat "$TESTDIR/bad-input.out")"
    left=$(_bad_input_snapshot | diff "$TESTDIR/bad-input.before" - | grep '^>' || true)
    [ -z "$left" ] || fail "$what: left behind: $left"
    left=$(_bad_input_daemons | grep -vxFf "$TESTDIR/bad-input.daemons" || true)
    [ -z "$left" ] || fail "$what: left a daemon running: pid $left"
    echo "ok: $what -> $rc: $(cat "$STDERR")"
  done
}
