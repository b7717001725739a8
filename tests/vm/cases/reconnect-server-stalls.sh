#!/bin/bash
# A server that stops answering (nbdkit SIGSTOPped: it keeps its listening
# socket, so new connections hang in the handshake), with --io-timeout 3
# --reconnect-timeout 10:
# 1. stopped 6 s (longer than the I/O timeout, shorter than the reconnect
#    timeout) under fio --verify=crc32c: the connection is declared dead and
#    replaced, fio sees no error and no verify failure;
# 2. stopped for good: a direct read fails with EIO after about
#    io-timeout + reconnect-timeout (measured, bounded), and a read issued
#    after that fails at once; unbd list does not say connected;
# 3. SIGCONT: reads and writes work again without detaching, and the device
#    reads the same as the export read by libnbd.
# nbdkit runs with -t 1 (each connection's requests handled in its reader
# thread): with worker threads, nbdkit 1.32 aborts after the SIGCONT when it
# finds a connection we gave up on cut in the middle of a WRITE payload while
# its other requests are still replying (see server_resume in ../lib.sh,
# which would start it again). The export is a file, so data outlives nbdkit.
. "$(dirname "$0")/../lib.sh"

io_timeout=3 reconnect_timeout=10
img=$TESTDIR/disk.img
truncate -s 64M "$img"
serve_restartable stall -t 1 file "$img"
attach "$URI" -q 2 --zero-copy=auto --io-timeout $io_timeout --reconnect-timeout $reconnect_timeout
expect_zero_copy auto
dmesg_mark
dev=$(basename "$DEV")
pid=$(server_pid stall)

fio_verify() { # RUNTIME OUT
  timeout $(($1 * 4 + 120)) fio --name=stall --filename="$DEV" --ioengine=io_uring --direct=1 \
    --rw=randwrite --bsrange=4k-256k --iodepth=32 --numjobs=2 --size=32M --offset_increment=32M \
    --cpus_allowed=0-1 --cpus_allowed_policy=split --verify=crc32c --verify_backlog=64 \
    --verify_state_save=0 --time_based --runtime="$1" --randseed=$RANDOM --group_reporting \
    --eta=never --output-format=json --output="$2.json" 2>"$2.err"
}
fio_check() { # STATUS OUT WHAT
  sed -n '/^{/,$p' "$2.json" >"$2.clean.json"
  echo "fio ($3): $(jq -cM '.jobs[0] | {error, written_MiB: (.write.io_bytes / 1048576 | floor),
    verify_read_MiB: (.read.io_bytes / 1048576 | floor)}' "$2.clean.json" 2>/dev/null)"
  if grep -q '^verify:' "$2.err"; then head -20 "$2.err" >&2; fail "fio verify failures ($3)"; fi
  [ "$1" = 0 ] || { tail -20 "$2.err" >&2; fail "fio exit status $1 ($3)"; }
  jq -e '[.jobs[].error] | all(. == 0)' "$2.clean.json" >/dev/null || fail "fio reports an I/O error ($3)"
}

# 1. A 6 s stall under fio.
fio_verify 24 "$TESTDIR/fio1" &
fio_pid=$!
cleanup_fn "kill $fio_pid 2>/dev/null; kill -CONT \$(cat $TESTDIR/stall.pid 2>/dev/null) 2>/dev/null"
sleep 8
kill -0 $fio_pid || fail "fio ended early"
kill -STOP "$pid"
t_stop=$(now)
sleep 6
w=$(writes_done "$DEV")
server_resume stall
wait_writes_after "$w" 60
echo "stall 1: stopped $(since "$t_stop")s in all; writes completing ${WAITED}s after SIGCONT"
wait "$RESUME_WATCHER"
pid=$(server_pid stall)
rc=0; wait $fio_pid || rc=$?
fio_check $rc "$TESTDIR/fio1" "a 6 s stall"
read -r conn rec <<<"$(device_fields connection reconnects)"
[ "$conn" = connected ] || fail "after the 6 s stall: connection '$conn'"
[ "$rec" -ge 1 ] || fail "a stall longer than --io-timeout should replace the connection; reconnects $rec"
echo "after the 6 s stall: connection $conn, reconnects $rec"

# 2. Stopped for good: held, then EIO.
kill -STOP "$pid"
t0=$(now)
if timeout 120 dd if="$DEV" of=/dev/null bs=4k count=1 skip=100 iflag=direct status=none 2>"$TESTDIR/dd.err"; then
  fail "a read succeeded with the server stopped"
fi
held=$(since "$t0")
grep -q 'Input/output error' "$TESTDIR/dd.err" || fail "the read failed, but not with EIO: $(cat "$TESTDIR/dd.err")"
echo "stall 2: a read with the server stopped failed with EIO after ${held}s" \
  "(io-timeout $io_timeout + reconnect-timeout $reconnect_timeout)"
awk -v h="$held" -v lo=$((reconnect_timeout - 1)) -v hi=$((io_timeout + reconnect_timeout + 10)) \
  'BEGIN { exit !(h >= lo && h <= hi) }' ||
  fail "the read failed after ${held}s, expected between $((reconnect_timeout - 1)) and $((io_timeout + reconnect_timeout + 10))s"
t0=$(now)
if timeout 60 dd if="$DEV" of=/dev/null bs=4k count=1 skip=200 iflag=direct status=none 2>/dev/null; then
  fail "a second read succeeded with the server stopped"
fi
again=$(since "$t0")
echo "stall 2: a read issued after the reconnect timeout failed after ${again}s"
awk -v h="$again" 'BEGIN { exit !(h <= 3) }' || fail "past the reconnect timeout a new read should fail at once, took ${again}s"
read -r conn rec last <<<"$(device_fields connection reconnects last_failure)"
echo "stall 2: unbd list: connection $conn, reconnects $rec, last failure: $last"
[ "$conn" != connected ] || fail "unbd list says connected while the server is stopped past the reconnect timeout"
[ "$(device_field state)" = live ] || fail "the device should stay live, it is '$(device_field state)'"

# 3. Back: I/O works again without detaching.
t0=$(now)
server_resume stall
wait_until 60 'dd if="$DEV" of=/dev/null bs=4k count=1 skip=300 iflag=direct status=none 2>/dev/null' ||
  fail "reads still fail 60 s after SIGCONT"
echo "stall 3: reads work again ${WAITED}s after SIGCONT"
wait "$RESUME_WATCHER"
wait_connection connected 30
rc=0; fio_verify 10 "$TESTDIR/fio3" || rc=$?
fio_check $rc "$TESTDIR/fio3" "after the server came back"
# Only the reads meant to fail may have failed: the two issued while the
# server was stopped (sectors 800 and 1600) and the polling ones until it was
# back (sector 2400).
if dmesg_since_mark | grep -E "$dev\b" | grep -iE 'error|fail' | grep -vE 'sector (800|1600|2400) '; then
  fail "the kernel logged errors on $dev other than the reads that were to fail"
fi
daemon_log_connection_lines
sum=$(dev_sha256 "$DEV")
[ "$(nbd_sha256 "$URI")" = "$sum" ] || fail "the device and the export (libnbd) differ"
detach "$ID"
expect_no_devices
