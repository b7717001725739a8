#!/bin/bash
# The server dies under I/O, with --reconnect-timeout 0 (fail at once instead
# of holding I/O while reconnecting): requests fail with EIO instead of
# hanging or killing the daemon (SIGPIPE), the device stays live until detach
# while unbd list says it is not connected, and detach (with the daemon still
# trying to reconnect) leaves nothing behind.
# Runs in the guest: tests/vm/run -- bash THIS.
. "$(dirname "$0")/../../functions.sh"
[ -e /dev/ublk-control ] || fail "/dev/ublk-control missing (not in the VM?)"
export UNBD_STATE_DIR=$TESTDIR/state
cleanup_fn '"$UNBD" detach --all'

sock=$TESTDIR/nbd.sock
nbdkit -P "$TESTDIR/nbdkit.pid" -U "$sock" memory 64M
for _ in $(seq 100); do [ -s "$TESTDIR/nbdkit.pid" ] && break; sleep 0.1; done

json=$("$UNBD" attach "nbd+unix:///?socket=$sock" -q 2 --reconnect-timeout 0 --json) || fail "attach"
dev=$(jq -r .dev <<<"$json"); pid=$(jq -r .pid <<<"$json"); id=$(jq -r .id <<<"$json")

timeout 60 fio --name=load --filename="$dev" --direct=1 --ioengine=io_uring --rw=randrw --bs=64k \
  --iodepth=16 --numjobs=2 --size=32M --time_based --runtime=8 >"$TESTDIR/fio.log" 2>&1 &
fio_pid=$!
sleep 2
kill "$(cat "$TESTDIR/nbdkit.pid")"
wait "$fio_pid" && fail "fio succeeded although the server died" || true
grep -q "Input/output error" "$TESTDIR/fio.log" || fail "fio did not see EIO: $(tail -5 "$TESTDIR/fio.log")"

kill -0 "$pid" || fail "the daemon died with its server"
"$UNBD" list --json | jq -e --arg dev "$dev" '.[] | select(.dev == $dev and .state == "live")' >/dev/null ||
  fail "device should stay live (failing I/O) until detach"
conn=$("$UNBD" list --json | jq -r --arg dev "$dev" '.[] | select(.dev == $dev) | .connection')
[ -n "$conn" ] && [ "$conn" != null ] && [ "$conn" != connected ] ||
  fail "unbd list should show the connection is not up after the server died, it says '$conn'"
echo "after the server died: connection $conn"
t0=$SECONDS
timeout 20 dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct 2>"$TESTDIR/dd.err" && fail "read succeeded without a server"
grep -q "Input/output error" "$TESTDIR/dd.err" || fail "the read did not fail with EIO: $(cat "$TESTDIR/dd.err")"
[ $((SECONDS - t0)) -le 5 ] || fail "with --reconnect-timeout 0 a read took $((SECONDS - t0)) s to fail"

timeout 60 "$UNBD" detach "$dev" || fail "detach after the server died"
[ ! -e "$dev" ] && [ ! -e "/dev/ublkc$id" ] || fail "device left behind"
[ ! -e "$UNBD_STATE_DIR/$id.json" ] || fail "state file left behind"
! kill -0 "$pid" 2>/dev/null || fail "daemon still running"
echo "PASS"
