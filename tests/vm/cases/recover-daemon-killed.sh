#!/bin/bash
# The daemon is SIGKILLed 5 times during a fio --verify=crc32c run (4K..256K
# random writes, QD 32, two queues, zero copy auto, then copy mode): each
# time the kernel keeps the device quiesced (UBLK_F_USER_RECOVERY), `unbd
# list` says so, `unbd recover` brings a new daemon, and fio sees no I/O
# error and no verify failure. Afterwards libnbd reads exactly what the
# device holds. Prints the pause per recovery (kill to writes completing).
. "$(dirname "$0")/../lib.sh"

# One fio run on $DEV while the daemon is killed and recovered $2 times.
fio_through_daemon_kills() {
  local runtime=$1 kills=$2 out=$TESTDIR/fio-recover k pid w t_kill fio_pid rc=0 pauses=() recover_times=()
  dmesg_mark
  timeout $((runtime * 4 + 180)) fio --name=recover --filename="$DEV" \
    --ioengine=io_uring --direct=1 --rw=randwrite --bsrange=4k-256k \
    --iodepth=32 --numjobs=2 --size=32M --offset_increment=32M \
    --verify=crc32c --verify_backlog=64 --verify_state_save=0 \
    --time_based --runtime="$runtime" --randseed=$RANDOM --group_reporting \
    --eta=never --output-format=json --output="$out.json" 2>"$out.err" &
  fio_pid=$!
  cleanup_fn "kill $fio_pid 2>/dev/null"
  local t0
  t0=$(now)
  for k in $(seq "$kills"); do
    # Kill k at k/KILLS of 70% of the run, or at once when late (a recovery
    # takes 4-11 s in this emulated guest, `unbd list` polls included).
    cs_now
    local d=$((t0 + k * runtime * 70 / kills - CS))
    [ $d -le 0 ] || sleep "$(printf '%d.%02d' $((d / 100)) $((d % 100)))"
    kill -0 $fio_pid 2>/dev/null || { cat "$out.err" >&2; fail "fio ended before kill $k of $kills"; }
    pid=$(device_field pid)
    w=$(writes_done "$DEV")
    t_kill=$(now)
    kill -9 "$pid"
    wait_until 30 '! kill -0 '"$pid"' 2>/dev/null' || fail "daemon $pid survived SIGKILL"
    wait_until 30 '[ "$(device_field state)" = quiesced ]' ||
      fail "kill $k: the device is '$(device_field state)', not quiesced, after its daemon died"
    local t_quiesced
    t_quiesced=$(now)
    "$UNBD" recover "$ID" >"$TESTDIR/recover.out" 2>&1 || { cat "$TESTDIR/recover.out" >&2; fail "unbd recover $ID"; }
    wait_writes_after "$w" 60
    pauses+=("$(since "$t_kill")")
    recover_times+=("$(since "$t_quiesced")")
    [ "$(device_field pid)" != "$pid" ] || fail "unbd list still shows the killed daemon's pid"
    [ "$(device_field state)" = live ] || fail "after recover the device is '$(device_field state)', not live"
    echo "kill $k/$kills: writes completing again ${pauses[-1]} s after SIGKILL (${recover_times[-1]} s after unbd recover began)"
  done
  wait $fio_pid || rc=$?
  sed -n '/^{/,$p' "$out.json" >"$out.clean.json"
  if grep -q '^verify:' "$out.err"; then head -20 "$out.err" >&2; fail "fio found verify failures on $DEV"; fi
  [ $rc = 0 ] || { tail -20 "$out.err" >&2; fail "fio through $kills daemon kills: exit status $rc"; }
  jq -e '[.jobs[].error] | all(. == 0)' "$out.clean.json" >/dev/null || fail "fio reports an I/O error"
  if dmesg_since_mark | grep -E "$(basename "$DEV")\b" | grep -iE 'error|fail'; then
    fail "the kernel logged I/O errors on $DEV"
  fi
  echo "pauses (s, SIGKILL to writes flowing; the test's polling included): ${pauses[*]}"
  echo "recover times (s, from seeing the device quiesced to writes flowing): ${recover_times[*]}"
}

for zc in auto off; do
  img=$TESTDIR/disk-$zc.img
  truncate -s 64M "$img"
  # -t 1: nbdkit 1.32 aborts (connections.c:402 assertion) when a client
  # dies in the middle of a WRITE payload while other threads still reply.
  serve_restartable "disk-$zc" -t 1 file "$img"
  attach "$URI" -q 2 --zero-copy=$zc
  expect_zero_copy $zc
  if [ $zc = auto ]; then fio_through_daemon_kills 90 5; else fio_through_daemon_kills 40 2; fi
  expect_durable "disk-$zc" "$img"
done
expect_no_devices
