# Helpers for the VM cases (tests/vm/cases/*.sh), on top of tests/functions.sh.
# Source it first:  . "$(dirname "$0")/../lib.sh"
# Every case runs as root inside the ublk-capable guest (tests/vm/run).
#
#   serve_unix NAME NBDKIT-ARGS...  nbdkit on $TESTDIR/NAME.sock; sets SOCK, URI
#   serve_tcp NBDKIT-ARGS...        nbdkit on 127.0.0.1:PORT; sets PORT, URI
#   attach URI UNBD-ATTACH-ARGS...  `unbd attach --json`; sets DEV, ID, ZC,
#                                   QUEUES, ATTACH_JSON; detached on exit
#   expect_zero_copy MODE           ZC (and `unbd list`) match --zero-copy=MODE
#   detach ID                       `unbd detach ID`, then ID must be gone
#   expect_no_devices [KEEP...]     no /dev/ublk[bc]*, nothing in /run/unbd
#                                   but the files named
#   nbd_sha256 URI                  sha256 of the whole export, read by libnbd
#   dev_sha256 DEV                  sha256 of the whole device (O_DIRECT)
#   sysfs DEV ATTR                  /sys/block/ublkbN/ATTR
#   kernel_has FEATURE...           the guest's ublk has every FEATURE (names
#                                   as ublk-features-check prints them:
#                                   AUTO_BUF_REG, UPDATE_SIZE, QUIESCE, ...)
#   require_kernel FEATURE... -- WHY   skip the case unless kernel_has
#   skip REASON                     the case cannot run on this kernel: says
#                                   so on stderr and exits 77, which ctest
#                                   shows as skipped (SKIP_RETURN_CODE) and
#                                   scripts/test-all.sh counts as failed --
#                                   only for what a kernel truly lacks
#   skip_part REASON                a part of the case this kernel cannot do
#                                   (the case checks unbd's refusal instead):
#                                   the rest runs, and a case that passed
#                                   otherwise ends as skipped (77), naming
#                                   the parts
#
# Servers that go away and come back (the reconnect cases):
#   serve_restartable NAME NBDKIT-ARGS...  like serve_unix (VMTEST_TRANSPORT=tcp
#                                   too); sets SOCK or PORT, URI; remembers the
#                                   arguments so the server can come back
#   server_pid NAME                 pid of NAME's nbdkit
#   server_kill NAME [SIGNAL]       kill it (default KILL), wait until it is
#                                   gone, remove its socket
#   server_start NAME               start it again: same arguments, same socket
#   server_restart NAME [DOWN]      server_kill, DOWN seconds (0) down, start
#   server_resume NAME              SIGCONT it; start it again if it then dies
#   device_field FIELD              .FIELD of device $ID in `unbd list --json`
#   device_fields F1 F2...          the same for several fields, tab-separated
#   wait_until SECS SHELL-EXPR      until SHELL-EXPR (eval'ed) succeeds; sets
#                                   WAITED (s); status 1 after SECS
#   wait_connection STATE SECS      until .connection is STATE, or fail; WAITED
#   wait_writes_after N SECS        until $DEV has completed more than N writes
#                                   (/sys/block/ublkbN/stat), or fail; WAITED
#   writes_done DEV                 completed writes of DEV so far
#   now / since T0                  centiseconds since boot / seconds since
#                                   T0 (a `now`), as S.CC
#   dmesg_mark / dmesg_since_mark   the kernel log since the mark
#   daemon_log_connection_lines     the daemon log lines about lost/back
#                                   connections (device $ID)
#   expect_log_says_back N          the daemon log says N times that the
#                                   connections are back
#   fio_through_restarts NAME RUNTIME KILLS   fio --verify=crc32c on $DEV for
#                                   RUNTIME s while server NAME is killed (-9)
#                                   and started again KILLS times; fails on any
#                                   fio error, verify failure, kernel I/O error
#   expect_durable NAME IMG          flush $DEV, detach, kill NAME (its cache
#                                   dies with it): libnbd over IMG alone reads
#                                   exactly what the device held
. "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"

# nbdsh needs the distribution's python3 (python3-libnbd), not a user's.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

[ "${UNBD_VM_GUEST:-0}" = 1 ] && [ -e /dev/ublk-control ] ||
  fail "not in the ublk test VM (run through tests/vm/run -- bash $0)"
[ -x "$UNBD" ] || fail "unbd binary $UNBD not built"
STATE_DIR=${UNBD_STATE_DIR:-/run/unbd}

serve_unix() {
  local name=$1; shift
  # A debugging knob: VMTEST_TRANSPORT=tcp serves these exports over TCP.
  if [ "${VMTEST_TRANSPORT:-unix}" = tcp ]; then serve_tcp "$@"; return; fi
  SOCK=$TESTDIR/$name.sock
  start_nbdkit -P "$TESTDIR/$name.pid" -U "$SOCK" "$@"
  URI="nbd+unix:///?socket=$SOCK"
}

serve_tcp() {
  local name=tcp$RANDOM
  PORT=$(pick_port)
  start_nbdkit -P "$TESTDIR/$name.pid" -i 127.0.0.1 -p "$PORT" "$@"
  URI="nbd://127.0.0.1:$PORT/"
}

# On exit. A failing case ($rc is _run_cleanups' status) shows the daemon's log.
_detach_if_attached() {
  if [ "${rc:-0}" != 0 ] && [ -s "$STATE_DIR/$1.log" ]; then
    echo "--- daemon log of device $1:" >&2
    tail -n 40 "$STATE_DIR/$1.log" >&2
  fi
  [ -e "$STATE_DIR/$1.json" ] || [ -e "/dev/ublkc$1" ] || return 0
  "$UNBD" detach "$1" || echo "cleanup: unbd detach $1 failed" >&2
}

attach() {
  local uri=$1; shift
  ATTACH_JSON=$("$UNBD" attach --json "$uri" "$@" 2>"$TESTDIR/attach.err") || {
    cat "$TESTDIR/attach.err" >&2
    fail "unbd attach $uri $* failed"
  }
  cat "$TESTDIR/attach.err" >&2
  ID=$(jq -er .id <<<"$ATTACH_JSON") || fail "attach --json has no id: $ATTACH_JSON"
  cleanup_fn _detach_if_attached "$ID"
  DEV=$(jq -er .dev <<<"$ATTACH_JSON")
  ZC=$(jq -er .zero_copy <<<"$ATTACH_JSON")
  QUEUES=$(jq -er .queues <<<"$ATTACH_JSON")
  [ "$DEV" = "/dev/ublkb$ID" ] || fail "attach --json: dev $DEV does not match id $ID"
  [ -b "$DEV" ] || fail "$DEV is not a block device right after attach"
  echo "attached $uri as $DEV (zero_copy=$ZC queues=$QUEUES)"
}

# The mode in use must be the one asked for, never a silent fallback: on a
# kernel with AUTO_BUF_REG (6.16+) auto must pick a zero-copy mode, on one
# without (6.12) copy mode.
expect_zero_copy() {
  local mode=$1 listed
  listed=$("$UNBD" list --json | jq -er ".[] | select(.id == $ID) | .zero_copy") ||
    fail "unbd list --json does not show device $ID"
  [ "$listed" = "$ZC" ] || fail "unbd list says zero_copy=$listed, attach said $ZC"
  case $mode in
  off) [[ $ZC == off/* ]] || fail "--zero-copy=off gave zero_copy=$ZC, expected copy mode (off/...)" ;;
  auto | on)
    if kernel_has AUTO_BUF_REG; then
      [[ $ZC != off/* && -n $ZC ]] || fail "--zero-copy=$mode gave zero_copy=$ZC on a kernel with AUTO_BUF_REG"
    else
      [ "$mode" = auto ] || fail "--zero-copy=on attached on a kernel without AUTO_BUF_REG (zero_copy=$ZC)"
      [[ $ZC == off/* ]] || fail "--zero-copy=auto gave zero_copy=$ZC on a kernel without AUTO_BUF_REG"
    fi ;;
  *) fail "expect_zero_copy: unknown mode $mode" ;;
  esac
}

detach() {
  "$UNBD" detach "$1" || fail "unbd detach $1 failed"
  [ ! -e "/dev/ublkb$1" ] || fail "/dev/ublkb$1 still exists after detach"
  [ ! -e "/dev/ublkc$1" ] || fail "/dev/ublkc$1 still exists after detach"
  [ ! -e "$STATE_DIR/$1.json" ] || fail "$STATE_DIR/$1.json still exists after detach"
}

# The daemon removes its log just after the device is gone: allow it 5 s.
# Arguments: files in $STATE_DIR that may stay (a killed daemon's log).
expect_no_devices() {
  local left f
  for _ in $(seq 50); do
    left=$(ls -d /dev/ublkb* /dev/ublkc* "$STATE_DIR"/* 2>/dev/null || true)
    for f in "$@"; do left=$(grep -vFx "$STATE_DIR/$f" <<<"$left" || true); done
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  fail "left behind: $(echo $left)"
}

nbd_sha256() {
  nbdsh -u "$1" -c '
import hashlib
size, step, d = h.get_size(), 4 << 20, hashlib.sha256()
for off in range(0, size, step):
    d.update(h.pread(min(step, size - off), off))
print(d.hexdigest())'
}

dev_sha256() {
  dd if="$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1
}

sysfs() { cat "/sys/block/$(basename "$1")/$2"; }

# --- What the guest's kernel has --------------------------------------------
# The suite runs on the default 7.3 kernel and on Debian 13's own 6.12
# (README): a case that needs a newer ublk feature skips, visibly.
skip() {
  echo "SKIP: $* (kernel $(uname -r))" >&2
  exit 77
}

_skipped_parts=()
skip_part() {
  _skipped_parts+=("$*")
  echo "skipping a part on kernel $(uname -r): $*" >&2
}
# The last cleanup (registered first): turns a pass with skipped parts into
# a skip. _run_cleanups' $rc is visible here (bash scoping).
_end_skipped_parts() {
  [ "${rc:-1}" = 0 ] && [ ${#_skipped_parts[@]} -gt 0 ] || return 0
  echo "SKIP: the rest passed, but not run on kernel $(uname -r): $(printf '%s; ' "${_skipped_parts[@]}")" >&2
  rc=77
}
cleanup_fn _end_skipped_parts

kernel_has() {
  local check=$UNBD_BUILD_DIR/tests/vm/ublk-features-check rc=0
  [ -x "$check" ] || fail "$check not built"
  "$check" --has "$@" >/dev/null || rc=$?
  [ $rc -le 1 ] || fail "ublk-features-check --has $* failed (status $rc)"
  return $rc
}

require_kernel() {
  local features=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do features+=("$1"); shift; done
  shift
  kernel_has "${features[@]}" || skip "the kernel's ublk lacks ${features[*]}: $*"
}

# --- Servers that go away and come back -----------------------------------

declare -gA _srv_args _srv_listen
serve_restartable() {
  local name=$1; shift
  if [ "${VMTEST_TRANSPORT:-unix}" = tcp ]; then
    PORT=$(pick_port)
    _srv_listen[$name]="-i 127.0.0.1 -p $PORT"
    URI="nbd://127.0.0.1:$PORT/"
  else
    SOCK=$TESTDIR/$name.sock
    _srv_listen[$name]="-U $(printf %q "$SOCK")"
    URI="nbd+unix:///?socket=$SOCK"
  fi
  _srv_args[$name]=$(printf '%q ' "$@")
  cleanup_fn _kill_pidfile "$TESTDIR/$name.pid"
  cleanup_fn _show_server_log "$name"
  server_start "$name"
}

# nbdkit in the foreground (so its messages go to $TESTDIR/NAME.log, shown
# when the case fails), double-forked so that no job-control chatter follows
# its kills.
server_start() {
  local name=$1 pidfile=$TESTDIR/$1.pid
  rm -f "$pidfile"
  eval "(nbdkit -f -P \"\$pidfile\" ${_srv_listen[$name]} ${_srv_args[$name]} \
    </dev/null >>\"\$TESTDIR/\$name.log\" 2>&1 &)"
  for _ in $(seq 600); do [ -s "$pidfile" ] && return 0; sleep 0.05; done
  cat "$TESTDIR/$name.log" >&2
  fail "nbdkit ($name) did not start (no $pidfile after 30 s)"
}

_show_server_log() {
  [ "${rc:-0}" != 0 ] || return 0
  local pid state=gone
  pid=$(cat "$TESTDIR/$1.pid" 2>/dev/null) && ! _gone "$pid" && state="running (pid $pid)"
  echo "--- nbdkit ($1), $state, its messages:" >&2
  tail -n 20 "$TESTDIR/$1.log" >&2
}

server_pid() { cat "$TESTDIR/$1.pid" || fail "no pid file for server $1"; }

# Gone: no process, or a zombie nobody reaped yet.
_gone() {
  local st=
  [ -e "/proc/$1" ] && read -r _ _ st _ <"/proc/$1/stat" 2>/dev/null || return 0
  [ "$st" = Z ]
}

server_kill() {
  local name=$1 sig=${2:-KILL} pid
  pid=$(server_pid "$name")
  kill -"$sig" "$pid" || fail "kill -$sig nbdkit ($name, pid $pid)"
  for _ in $(seq 200); do _gone "$pid" && break; sleep 0.05; done
  _gone "$pid" || fail "nbdkit ($name, pid $pid) still there 10 s after SIG$sig"
  # A killed nbdkit leaves its socket behind; a new one would not bind.
  [[ ${_srv_listen[$name]} != -U* ]] || rm -f "$TESTDIR/$name.sock"
  rm -f "$TESTDIR/$name.pid"
}

# server_resume NAME: SIGCONT a SIGSTOPped server. nbdkit 1.32 may then abort
# ("raw_send_socket: Assertion `sock >= 0' failed"): a client that gave up on
# a stalled connection closed it in the middle of a WRITE payload, and nbdkit
# tears the connection down while other requests of it are still replying.
# A watcher in the background starts it again if it dies within 5 s (say so
# on stderr); wait for $RESUME_WATCHER before relying on the server's pid.
server_resume() {
  local name=$1 pid
  pid=$(server_pid "$name")
  kill -CONT "$pid" || fail "kill -CONT nbdkit ($name, pid $pid)"
  (
    for _ in $(seq 100); do _gone "$pid" && break; sleep 0.05; done
    _gone "$pid" || exit 0
    echo "note: nbdkit ($name) died after SIGCONT ($(tail -n 1 "$TESTDIR/$name.log")); starting it again" >&2
    [[ ${_srv_listen[$name]} != -U* ]] || rm -f "$TESTDIR/$name.sock"
    server_start "$name"
  ) &
  RESUME_WATCHER=$!
}

server_restart() {
  server_kill "$1"
  sleep "${2:-0}"
  server_start "$1"
}

# --- Watching a device ride through it ------------------------------------
# These run in polling loops while the guest is busy (TCG): no forks where a
# builtin does. Times are integers in centiseconds since boot.

cs_now() { local up; read -r up _ </proc/uptime; CS=$((10#${up/./})); }
now() { cs_now; echo "$CS"; }
# Seconds since T0 (a `now`), as S.CC.
since() { cs_now; local d=$((CS - $1)); printf '%d.%02d' $((d / 100)) $((d % 100)); }

device_field() {
  "$UNBD" list --json | jq -r --argjson id "$ID" ".[] | select(.id == \$id) | .$1"
}
# device_fields F1 F2...: the values on one line, separated by tabs.
device_fields() {
  local f=("${@/#/.}")
  "$UNBD" list --json |
    jq -r --argjson id "$ID" ".[] | select(.id == \$id) | [$(IFS=,; echo "${f[*]}")] | @tsv"
}

wait_until() {
  local secs=$1 expr=$2 t0
  t0=$(now)
  until eval "$expr"; do
    cs_now
    if [ $((CS - t0)) -gt $((secs * 100)) ]; then
      WAITED=$(since "$t0")
      return 1
    fi
    sleep 0.05
  done
  WAITED=$(since "$t0")
}

wait_connection() {
  wait_until "$2" '[ "$(device_field connection)" = "'"$1"'" ]' ||
    fail "device $ID: connection is '$(device_field connection)', not '$1', after ${2}s"
}

# Field 5 of /sys/block/X/stat: write requests completed.
_writes() { local a; read -ra a <"/sys/block/${1##*/}/stat"; W=${a[4]}; }
writes_done() { _writes "$1"; echo "$W"; }

wait_writes_after() {
  wait_until "$2" '_writes "$DEV"; [ "$W" -gt '"$1"' ]' ||
    fail "no write completed on $DEV within ${2}s (still $1)"
}

dmesg_mark() { _dmesg_lines=$(dmesg | wc -l); }
dmesg_since_mark() { dmesg | tail -n +$((${_dmesg_lines:-0} + 1)); }

daemon_log_connection_lines() {
  grep -iE 'lost|reconnect|connected|held|replay|back' "$STATE_DIR/$ID.log" || true
}

# expect_log_says_back N: the daemon log (at its default level) says, for
# each of N reconnects, that the device's connections are back; the lines
# are printed (they tell how long I/O was held).
expect_log_says_back() {
  local n
  n=$(grep -ciE 'reconnected|back after|is back' "$STATE_DIR/$ID.log" || true)
  grep -iE 'reconnected|back after|is back' "$STATE_DIR/$ID.log" || true
  [ "$n" -ge "$1" ] ||
    fail "$1 reconnects, but the daemon log says only $n times that a connection is back (and how long I/O was held)"
}

# fio_through_restarts NAME RUNTIME KILLS
# Two fio jobs (one per queue and CPU, 32 MiB each), 4K..256K random writes at
# QD 32, crc32c verify reads interleaved with the writes (verify_backlog) and
# at the end of each pass. Kill k (of KILLS, spread over RUNTIME) keeps the
# server down 0, 0.5, 1 or 2 s. After each: the device counts a reconnect,
# says connected, and completes writes again; the times (from nbdkit started)
# are printed. Needs $DEV and $ID.
fio_through_restarts() {
  local name=$1 runtime=$2 kills=$3 out=$TESTDIR/fio-$1
  local downs=(0 0.5 1 2) k d w t0 t_kill t_up down flowing rc=0 fio_pid conn rec prev=0 ended_at=
  dmesg_mark
  timeout $((runtime * 4 + 120)) fio --name=restart --filename="$DEV" \
    --ioengine=io_uring --direct=1 --rw=randwrite --bsrange=4k-256k \
    --iodepth=32 --numjobs=2 --size=32M --offset_increment=32M \
    --cpus_allowed=0-1 --cpus_allowed_policy=split \
    --verify=crc32c --verify_backlog=64 --verify_state_save=0 \
    --time_based --runtime="$runtime" --randseed=$RANDOM --group_reporting \
    --eta=never --output-format=json --output="$out.json" 2>"$out.err" &
  fio_pid=$!
  cleanup_fn "kill $fio_pid 2>/dev/null"
  t0=$(now)
  for k in $(seq "$kills"); do
    # Kill k at k/KILLS of 80% of the run (so that fio goes on after the
    # last), or at once if the previous reconnect took longer.
    cs_now
    d=$((t0 + k * runtime * 80 / kills - CS))
    [ $d -le 0 ] || sleep "$(printf '%d.%02d' $((d / 100)) $((d % 100)))"
    kill -0 $fio_pid 2>/dev/null || { ended_at=$k; break; }
    t_kill=$(since "$t0")
    server_kill "$name"
    down=${downs[k % 4]}
    sleep "$down"
    w=$(writes_done "$DEV")
    t_up=$(now)
    server_start "$name"
    wait_until 60 '_writes "$DEV"; [ "$W" -gt '"$w"' ] || ! kill -0 '$fio_pid' 2>/dev/null' ||
      fail "kill $k: no write completed on $DEV within 60 s after nbdkit started again"
    flowing=$WAITED
    # fio may end here, its run time over while its I/O was held: it reaps
    # every request first, so that kill still counts (its errors are checked
    # below).
    kill -0 $fio_pid 2>/dev/null || flowing="(fio ended meanwhile) $flowing"
    # `unbd list` costs seconds in a busy TCG guest: once, unless not there yet.
    wait_until 30 'read -r conn rec <<<"$(device_fields connection reconnects)"
      [ "$conn" = connected ] && [ "$rec" -gt "$prev" ]' ||
      fail "kill $k: writes flow again, but unbd list says connection '$conn', reconnects $rec (was $prev)"
    echo "kill $k/$kills at ${t_kill}s, down ${down}s: writes completing ${flowing}s" \
      "after nbdkit started; reconnects $prev -> $rec"
    prev=$rec
  done
  wait $fio_pid || rc=$?
  sed -n '/^{/,$p' "$out.json" >"$out.clean.json"
  echo "fio: $(jq -cM '.jobs[0] | {error, written_MiB: (.write.io_bytes / 1048576 | floor),
    verify_read_MiB: (.read.io_bytes / 1048576 | floor), writes: .write.total_ios,
    reads: .read.total_ios}' "$out.clean.json" 2>/dev/null)"
  if grep -q '^verify:' "$out.err"; then
    head -20 "$out.err" >&2
    fail "fio found $(grep -c 'verify:' "$out.err") verify failure(s) on $DEV"
  fi
  [ $rc = 0 ] || { tail -20 "$out.err" >&2; fail "fio through $kills server restarts: exit status $rc"; }
  [ -z "$ended_at" ] || fail "fio ended (cleanly) before kill $ended_at of $kills: reconnecting took too long?"
  jq -e '[.jobs[].error] | all(. == 0)' "$out.clean.json" >/dev/null ||
    fail "fio reports an I/O error: $(jq -cM '[.jobs[] | .error]' "$out.clean.json")"
  jq -e '.jobs[0].read.io_bytes > 0 and .jobs[0].write.io_bytes > 0' "$out.clean.json" >/dev/null ||
    fail "fio did not both write and verify-read"
  if dmesg_since_mark | grep -E "$(basename "$DEV")\b" | grep -iE 'error|fail'; then
    fail "the kernel logged I/O errors on $DEV"
  fi
}

# expect_durable NAME IMG: everything the device holds is in IMG, without the
# server's help: FLUSH (fsync of the device), read the device, detach, kill
# the server (a cache filter's unflushed data dies with it), then read IMG
# through a fresh read-only nbdkit with libnbd: the two sha256 must match.
expect_durable() {
  local name=$1 img=$2 dev_sum nbd_sum
  sync "$DEV" || fail "fsync (FLUSH) of $DEV failed"
  dev_sum=$(dev_sha256 "$DEV")
  detach "$ID"
  server_kill "$name"
  serve_unix "$name-check" -r file "$img"
  nbd_sum=$(nbd_sha256 "$URI")
  [ "$nbd_sum" = "$dev_sum" ] ||
    fail "the export file's sha256 $nbd_sum != the device's $dev_sum: acknowledged writes were lost"
  echo "device and export file agree after flush and server kill (sha256 ${dev_sum:0:16}...)"
}
