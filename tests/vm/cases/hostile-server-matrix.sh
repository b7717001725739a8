#!/bin/bash
# A misbehaving server behind a real /dev/ublkbN, with the ASan + UBSan
# build of unbd (build/asan; scripts/test-all.sh builds it before the VM
# tests). The server is tests/integration/support/scripted_server.py: the
# export keeps what is written, and every request covering byte 8 MiB gets
# the row's misbehaviour. Each row: attach (--io-timeout 3,
# --reconnect-timeout 0: held I/O fails at once while the connection is
# replaced), write and read back 1 MiB at offset 0, then the poisoned I/O,
# which must end as the table says within its bound; then the data at 0 reads
# back unchanged (no other request disturbed), the daemon still runs, detach
# works, nothing is left, and no sanitizer wrote a report.
# Then the absurd export facts whose attach outcome is unbd's own decision
# (the handshake refusals are the same code as `unbd info`'s, tested on the
# host: tests/integration/info-absurd-export-facts.sh): the device is made
# as the table says, or attach fails with one line and leaves nothing.
. "$(dirname "$0")/../lib.sh"
UNBD=$UNBD_SOURCE_DIR/build/asan/unbd
[ -x "$UNBD" ] || fail "no ASan build at $UNBD (cmake --preset asan && cmake --build --preset asan)"
. "$UNBD_SOURCE_DIR/tests/integration/support/info.sh"  # serve_scripted
mkdir -p "$TESTDIR/sanitizer"
export ASAN_OPTIONS="log_path=$TESTDIR/sanitizer/asan:abort_on_error=0:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$TESTDIR/sanitizer/ubsan:print_stacktrace=1"
poison=$((8 << 20))
size=$((16 << 20))

expect_no_sanitizer_report() {
  local reports
  reports=$(ls "$TESTDIR/sanitizer" 2>/dev/null || true)
  [ -z "$reports" ] || { head -40 "$TESTDIR/sanitizer"/* >&2; fail "$1: a sanitizer report: $reports"; }
}

# rw_at DEV OP OFFSET BYTES: one O_DIRECT dd; prints its exit status and
# the errno text dd gave, e.g. "1 Input/output error".
rw_at() {
  local dev=$1 op=$2 off=$3 bytes=$4 rc=0
  if [ "$op" = read ]; then
    dd if="$dev" of=/dev/null bs="$bytes" count=1 skip="$off" iflag=direct,skip_bytes 2>"$TESTDIR/dd.err" || rc=$?
  else
    dd if=/dev/urandom of="$dev" bs="$bytes" count=1 seek="$off" oflag=direct,seek_bytes 2>"$TESTDIR/dd.err" || rc=$?
  fi
  echo "$rc $(sed -n 's/^dd: .*: \([A-Z][a-z/ ]*[a-z]\)$/\1/p' "$TESTDIR/dd.err" | head -1)"
}

# case             | the poisoned I/O              | outcome                      | bound (s)
rows=(
  "bad-magic        | read 4096                     | 1 Input/output error         | 15"
  "unknown-cookie   | read 4096                     | 1 Input/output error         | 15"
  "stale-cookie     | read 4096                     | 1 Input/output error         | 15"
  "unsolicited      | read 4096                     | 1 Input/output error         | 15"
  "duplicate        | read 4096                     | 0                            | 15"
  "close-mid-read   | read 65536                    | 1 Input/output error         | 15"
  "error-out-of-spec| read 4096                     | 1 Invalid argument           | 15"
  "structured       | read 4096                     | 1 Input/output error         | 15"
  "silent           | read 4096                     | 1 Input/output error         | 20"
  "stop-reading     | write 4194304                 | 1 Input/output error         | 20"
)
results=()
for row in "${rows[@]}"; do
  IFS='|' read -r case io want bound <<<"$row"
  case=$(trim "$case"); io=$(trim "$io"); want=$(trim "$want"); bound=$(trim "$bound")
  serve_scripted "$case" --size "$size" --misbehave "$case" --poison "$poison"
  attach "$URI" --io-timeout 3 --reconnect-timeout 0 >/dev/null
  pid=$(device_field pid)
  dd if=/dev/urandom of="$TESTDIR/good" bs=1M count=1 2>/dev/null
  dd if="$TESTDIR/good" of="$DEV" bs=1M oflag=direct 2>/dev/null || fail "$case: the write at 0 failed"
  t0=$(now)
  # shellcheck disable=SC2086  # op and size are two words
  got=$(rw_at "$DEV" ${io% *} "$poison" ${io#* })
  took=$(since "$t0")
  got=$(trim "$got")
  [ "$got" = "$want" ] || fail "$case: the poisoned $io ended '$got', expected '$want'"
  [ "${took%.*}" -lt "$bound" ] || fail "$case: the poisoned $io took $took s (bound $bound s)"
  # The connection may still be being replaced (a duplicate reply is read
  # after the request it repeats completed, so even after rw_at returned),
  # and with --reconnect-timeout 0 a read in that window fails at once:
  # read until the device answers again, then compare.
  wait_until 10 'dd if="$DEV" of="$TESTDIR/back" bs=1M count=1 iflag=direct 2>/dev/null' ||
    fail "$case: offset 0 still unreadable 10 s after the misbehaviour"
  cmp "$TESTDIR/back" "$TESTDIR/good" ||
    fail "$case: the data at offset 0 changed after the misbehaviour"
  kill -0 "$pid" 2>/dev/null || fail "$case: the daemon ($pid) died"
  reconnects=$(device_field reconnects)
  t0=$(now)
  timeout 60 "$UNBD" detach "$ID" || fail "$case: detach failed"
  expect_no_devices "$ID.log"
  rm -f "$STATE_DIR/$ID.log"
  expect_no_sanitizer_report "$case"
  results+=("$(printf '%-18s %-14s -> %-24s in %5s s; reconnects %s; detach %s s' "$case" "$io" "$got" "$took" \
    "$reconnects" "$(since "$t0")")")
  echo "ok: ${results[-1]}"
done

# A handshake that never ends: attach gives up at its handshake timeout.
serve_scripted never --misbehave handshake-never-ends
t0=$(now)
if timeout 120 "$UNBD" attach "$URI" 2>"$STDERR"; then fail "attach to a server that never answers GO succeeded"; fi
[ "$(wc -l <"$STDERR")" = 1 ] || fail "handshake-never-ends: expected one line, got: $(cat "$STDERR")"
expect_no_devices
expect_no_sanitizer_report handshake-never-ends
results+=("handshake-never-ends: attach failed in $(since "$t0") s: $(cat "$STDERR")")
echo "ok: ${results[-1]}"

# Absurd export facts whose attach outcome is unbd's decision (see
# tests/integration/info-absurd-export-facts.sh for the handshake refusals).
# case                       | server args                      | attach: size in bytes, or the refusal's words
absurd=(
  "size 0                    | --size 0                         | refused: smaller than one"
  "size not a block multiple | --size 5000 --block 4096,4096,1048576 | 4096"
  "size 2^63-1               | --size 9223372036854775807       | 9223372036854775296"
  "maximum below 512         | --block 1,256,256                | refused: is smaller than its block size 512"
  "minimum 64 KiB            | --block 65536,65536,1048576      | refused: larger than the 4096 bytes a Linux block device can use"
  "preferred above 32 MiB    | --block 512,67108864,4294967295  | 1048576"
  "maximum not a power of 2  | --block 512,4096,1000000         | 1048576"
)
n=0
for row in "${absurd[@]}"; do
  IFS='|' read -r name args want <<<"$row"
  name=$(trim "$name"); want=$(trim "$want")
  # shellcheck disable=SC2086  # the server arguments are words
  serve_scripted "absurd$n" $args
  n=$((n + 1))
  if [[ $want == refused:* ]]; then
    if "$UNBD" attach "$URI" >/dev/null 2>"$STDERR"; then fail "$name: attach succeeded, expected a refusal"; fi
    [ "$(wc -l <"$STDERR")" = 1 ] || fail "$name: expected one line on stderr, got: $(cat "$STDERR")"
    grep -qF -- "${want#refused: }" "$STDERR" || fail "$name: the refusal does not say '${want#refused: }': $(cat "$STDERR")"
    expect_no_devices
    results+=("$name: refused: $(cat "$STDERR")")
  else
    attach "$URI" >/dev/null
    got=$(blockdev --getsize64 "$DEV")
    [ "$got" = "$want" ] || fail "$name: the device has $got bytes, expected $want"
    rw_at "$DEV" read 0 4096 | grep -q "^0" || fail "$name: reading the device failed: $(cat "$TESTDIR/dd.err")"
    detach "$ID"
    expect_no_devices
    results+=("$name: attached, $got bytes, read, detached")
  fi
  expect_no_sanitizer_report "$name"
  echo "ok: ${results[-1]}"
done

echo
echo "hostile server matrix (ASan + UBSan build, no sanitizer report):"
printf '  %s\n' "${results[@]}"
echo "PASS"
