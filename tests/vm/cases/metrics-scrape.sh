#!/bin/bash
# attach --metrics 127.0.0.1:PORT, scraped with curl while fio (randrw,
# --verify=crc32c, two queues) runs: every scrape passes `promtool check
# metrics` and no counter goes backwards; afterwards the counters agree with
# what the kernel counted for the disk (/sys/block/ublkbN/stat: requests and
# bytes by direction) and with fio (bytes at least fio's), and each op's
# duration histogram counts exactly its requests; queue waits are counted.
# `unbd list --json` names the address. A second attach on the same port fails in one line and
# leaves no device. The server killed: /readyz says 503 (reconnecting) and
# comes back to 200 once it is started again, with the reconnect counted.
# A live restart serves the same port again. After detach nothing listens
# on it.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../../bad-input.sh"
export UNBD_STATE_DIR=$TESTDIR/state STATE_DIR=$TESTDIR/state
mkdir -p "$UNBD_STATE_DIR"

MPORT=$(pick_port)
M=http://127.0.0.1:$MPORT
serve_restartable disk memory 256M
attach "$URI" -q 2 --metrics "127.0.0.1:$MPORT"
[ "$(device_field metrics)" = "127.0.0.1:$MPORT" ] ||
  fail "unbd list --json says metrics '$(device_field metrics)', not 127.0.0.1:$MPORT"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$M/healthz")" = 200 ] || fail "/healthz is not 200 after attach"
wait_until 5 '[ "$(curl -s -o /dev/null -w "%{http_code}" "$M/readyz")" = 200 ]' ||
  fail "/readyz is not 200 on a live, connected device: $(curl -s "$M/readyz")"

# A label per device, and nothing but the device's own.
first=$(curl -sf "$M/metrics") || fail "GET /metrics"
grep -q "^unbd_device_info{device=\"$ID\",dev=\"$DEV\",uri=\"" <<<"$first" ||
  fail "unbd_device_info lacks the device's labels: $(grep unbd_device_info <<<"$first")"

# The port is taken now: another attach on it fails before making a device.
bad_input_baseline
check_bad_input \
  "--metrics on a port in use | 1 | cannot serve metrics on 127.0.0.1:$MPORT: Address already in use | \"\$UNBD\" attach \"\$URI\" --metrics 127.0.0.1:$MPORT"

# fio, with a scrape every 0.3 s meanwhile (a scrape of an idle device, timed, first).
t0=$(now)
curl -sf "$M/metrics" >/dev/null || fail "GET /metrics"
echo "one scrape with curl took $(since "$t0")s"
scrapes=$TESTDIR/scrapes
mkdir -p "$scrapes"
(
  i=0
  while [ ! -e "$TESTDIR/fio.done" ]; do
    curl -sf "$M/metrics" >"$scrapes/$(printf %04d $i)" || echo "scrape $i failed" >>"$TESTDIR/scrape.err"
    i=$((i + 1))
    sleep 0.3
  done
) &
scraper=$!
fio --name=mix --filename="$DEV" --ioengine=io_uring --direct=1 --rw=randrw --bssplit=4k/50:64k/30:1m/20 \
  --iodepth=16 --numjobs=2 --size=64M --offset_increment=64M --time_based --runtime=8 \
  --verify=crc32c --randseed=42 --group_reporting --cpus_allowed=0-1 --cpus_allowed_policy=split \
  --output-format=json >"$TESTDIR/fio.json" || { cat "$TESTDIR/fio.json"; fail "fio through $DEV"; }
touch "$TESTDIR/fio.done"
# fio may print notes before its JSON.
sed -n '/^{/,$p' "$TESTDIR/fio.json" >"$TESTDIR/fio.only.json"
wait "$scraper"
[ ! -s "$TESTDIR/scrape.err" ] || fail "scrapes failed during fio: $(cat "$TESTDIR/scrape.err")"
# (curl starts slowly in the guest while fio keeps both CPUs busy: a few
# scrapes, not 25.)
n=$(ls "$scrapes" | wc -l)
[ "$n" -ge 3 ] || fail "only $n scrapes during fio"

# Every scrape is valid and no counter went backwards.
prev=
for f in "$scrapes"/*; do
  promtool check metrics <"$f" >"$TESTDIR/promtool.out" 2>&1 ||
    fail "promtool rejects scrape $f: $(cat "$TESTDIR/promtool.out")"
  if [ -n "$prev" ]; then
    back=$(join <(grep -E '^unbd_[a-z_]*(_total|_bucket|_count)[{ ]' "$prev" | sort) \
                <(grep -E '^unbd_[a-z_]*(_total|_bucket|_count)[{ ]' "$f" | sort) |
      awk '$3 < $2 { print }')
    [ -z "$back" ] || fail "counters went backwards between $prev and $f: $back"
  fi
  prev=$f
done
echo "$n scrapes during fio, each accepted by promtool, no counter went backwards"

# After fio (the device idle): one more scrape, compared with the kernel and fio.
wait_until 5 '[ "$(curl -sf "$M/metrics" | awk "/^unbd_requests_in_flight/ {print \$2}")" = 0 ]' ||
  fail "requests still in flight 5 s after fio"
curl -sf "$M/metrics" >"$TESTDIR/after"
value() {  # value NAME LABEL-FRAGMENT: the sample's value (one match)
  local v
  v=$(grep -E "^$1\{" "$TESTDIR/after" | grep -F "$2" | awk '{print $2}')
  [ "$(wc -l <<<"$v")" = 1 ] && [ -n "$v" ] || fail "no single sample $1 with $2 in the scrape"
  echo "$v"
}
read -ra st <"/sys/block/$(basename "$DEV")/stat"
k_reads=${st[0]} k_read_bytes=$((st[2] * 512)) k_writes=${st[4]} k_write_bytes=$((st[6] * 512))
for op in read write; do
  req=$(value unbd_requests_total "op=\"$op\"")
  bytes=$(value unbd_bytes_total "op=\"$op\"")
  err=$(value unbd_request_errors_total "op=\"$op\"")
  count=$(value unbd_request_duration_seconds_count "op=\"$op\"")
  inf=$(value unbd_request_duration_seconds_bucket "op=\"$op\",le=\"+Inf\"")
  fio_bytes=$(jq -r ".jobs[0].$op.io_bytes" "$TESTDIR/fio.only.json")
  fio_ios=$(jq -r ".jobs[0].$op.total_ios" "$TESTDIR/fio.only.json")
  if [ $op = read ]; then k_req=$k_reads k_bytes=$k_read_bytes; else k_req=$k_writes k_bytes=$k_write_bytes; fi
  echo "$op: unbd $req requests $bytes bytes ($err errors); kernel $k_req requests $k_bytes bytes; fio $fio_ios I/Os $fio_bytes bytes"
  [ "$req" -gt 0 ] || fail "no $op requests counted"
  [ "$err" = 0 ] || fail "$err $op errors counted"
  [ "$count" = "$req" ] || fail "the $op histogram counts $count, the counter $req"
  [ "$inf" = "$req" ] || fail "the $op histogram's +Inf bucket is $inf, the counter $req"
  [ "$bytes" -ge "$fio_bytes" ] || fail "$op: unbd counted $bytes bytes, fio moved $fio_bytes"
  [ "$bytes" = "$k_bytes" ] || fail "$op: unbd counted $bytes bytes, the kernel $k_bytes"
  [ "$req" = "$k_req" ] || fail "$op: unbd counted $req requests, the kernel $k_req"
done
# The queue threads' waits: at least one per wake-up that reaped a reply,
# so fewer than the requests only when waits gathered several.
waits=$(value unbd_queue_waits_total "device=\"$ID\"")
held=$(value unbd_queue_held_waits_total "device=\"$ID\"")
all=$(($(value unbd_requests_total 'op="read"') + $(value unbd_requests_total 'op="write"')))
echo "queue waits: $waits ($held held their wake-up) for $all reads and writes"
[ "$waits" -gt 0 ] || fail "no queue waits counted"
[ "$held" -le "$waits" ] || fail "$held held waits of $waits waits"
sum=$(value unbd_request_duration_seconds_sum 'op="write"')
awk -v s="$sum" 'BEGIN { exit !(s > 0) }' || fail "the write histogram's sum is $sum"
grep -E '^unbd_request_duration_seconds_bucket\{.*op="write"' "$TESTDIR/after" | sed 's/^/  /'
echo "scrape size: $(wc -c <"$TESTDIR/after") bytes, $(grep -vc '^#' "$TESTDIR/after") samples"

# The server goes: not ready while reconnecting; back: ready, reconnect counted.
server_kill disk
# Scraped into a variable first: with pipefail, `curl | grep -q` fails when
# grep stops reading at its match while curl still writes (curl exits 23).
# The first scrape that shows a queue's connection down must already say
# reconnecting: one scrape, one story (polled every 50 ms, so a state that
# lags the queues, as the once-a-second state file does, is caught).
wait_until 10 'scrape=$(curl -sf "$M/metrics") && grep -Eq "^unbd_connection_up\{.*\} 0$" <<<"$scrape"' ||
  fail "no queue's unbd_connection_up went to 0 within 10 s of the server's death"
grep -qx "unbd_connection_state{device=\"$ID\",dev=\"$DEV\",uri=\"[^\"]*\",state=\"reconnecting\"} 1" <<<"$scrape" ||
  fail "a queue is down but unbd_connection_state does not say reconnecting: $(grep '^unbd_connection_\(state\|up\)' <<<"$scrape")"
wait_until 10 '[ "$(curl -s -o /dev/null -w "%{http_code}" "$M/readyz")" = 503 ]' ||
  fail "/readyz still $(curl -s -o /dev/null -w '%{http_code}' "$M/readyz") 10 s after the server was killed"
why=$(curl -s "$M/readyz")
echo "server killed: /readyz 503 after ${WAITED}s: $why"
[[ $why == *reconnecting* || $why == *down* ]] || fail "/readyz gives no reason: '$why'"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$M/healthz")" = 200 ] || fail "/healthz is not 200 while reconnecting"
server_start disk
wait_until 20 '[ "$(curl -s -o /dev/null -w "%{http_code}" "$M/readyz")" = 200 ]' ||
  fail "/readyz still $(curl -s "$M/readyz") 20 s after the server came back"
echo "server back: /readyz 200 after ${WAITED}s"
scrape=$(curl -sf "$M/metrics") || fail "/metrics after the server came back: curl failed"
grep -Eq '^unbd_reconnects_total\{.*\} [1-9]' <<<"$scrape" ||
  fail "unbd_reconnects_total did not count the reconnect: $(grep '^unbd_reconnects_total' <<<"$scrape")"

# A live restart: the old daemon lets go of the port, the new one (started
# from the state file) serves it again, from fresh counters.
if kernel_has QUIESCE; then
  "$UNBD" restart "$ID" >"$TESTDIR/restart.out" 2>&1 || { cat "$TESTDIR/restart.out" >&2; fail "unbd restart $ID"; }
  [ "$(device_field metrics)" = "127.0.0.1:$MPORT" ] ||
    fail "after unbd restart, unbd list --json says metrics '$(device_field metrics)'"
  wait_until 10 '[ "$(curl -s -o /dev/null -w "%{http_code}" "$M/readyz")" = 200 ]' ||
    fail "after unbd restart, /readyz is $(curl -s "$M/readyz")"
  scrape=$(curl -sf "$M/metrics") || fail "/metrics after unbd restart: curl failed"
  grep -q "^unbd_device_live{device=\"$ID\",.*} 1$" <<<"$scrape" ||
    fail "after unbd restart, /metrics does not show device $ID live: $(grep '^unbd_device_live' <<<"$scrape")"
  echo "after unbd restart the new daemon serves $M again"
else
  skip_part "metrics across unbd restart (no UBLK_F_QUIESCE, 6.16+)"
fi

detach "$ID"
rc=0; curl -s -o /dev/null "$M/metrics" || rc=$?
[ "$rc" = 7 ] || fail "after detach, curl of $M/metrics exits $rc, not 7 (connection refused)"
echo "after detach nothing listens on $MPORT"
expect_no_devices
