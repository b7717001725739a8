#!/usr/bin/env bash
# Every wrong use of the CLI that this host can show (no /dev/ublk-control
# here: attach stops early, after checking its command line): one line on
# stderr, the documented exit status, nothing left behind. The rows that
# need real ublk devices (-n taken, detach of a device already gone, a
# device that is not unbd's) are in tests/vm/cases/cli-bad-input.sh.
# Exit status: 1 failed, 2 wrong command line, 3 no such device.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/../bad-input.sh"
. "$(dirname "$0")/support/info.sh"

export UNBD_STATE_DIR=$TESTDIR/state
mkdir -p "$UNBD_STATE_DIR"
serve_scripted good --size 1048576
GOOD=$URI
echo '{"version": 1, "id": 5, "dev": "/dev/ublkb5", "pid": ' >"$UNBD_STATE_DIR/5.json"  # cut short
echo '{"version": 99, "id": 6, "dev": "/dev/ublkb6", "pid": 1}' >"$UNBD_STATE_DIR/6.json"
: >"$TESTDIR/not-a-socket"
bad_input_baseline

# what                           | exit | words on stderr                                    | command
check_bad_input \
  "unknown option                 | 2 | unknown command or option '--bogus'                | \"\$UNBD\" --bogus" \
  "unknown command                | 2 | unknown command or option 'frobnicate'             | \"\$UNBD\" frobnicate" \
  "no command                     | 2 | A subcommand is required                           | \"\$UNBD\"" \
  "unknown attach option          | 2 | not expected: --bogus (see unbd attach --help)     | \"\$UNBD\" attach \"\$GOOD\" --bogus" \
  "attach without a URI           | 2 | uri is required                                    | \"\$UNBD\" attach" \
  "a level named like a command  | 2 | uri is required (see unbd attach --help)           | \"\$UNBD\" --log-level info attach" \
  "not a URI                      | 2 | 'not-a-uri' is not an NBD URI                      | \"\$UNBD\" attach not-a-uri" \
  "URI without a host             | 2 | missing host in 'nbd://'                           | \"\$UNBD\" info nbd://" \
  "URI with a bad port            | 2 | bad port '99999'                                   | \"\$UNBD\" attach nbd://h:99999/" \
  "unix URI without a socket      | 2 | lacks '?socket=PATH'                               | \"\$UNBD\" attach nbd+unix:///x" \
  "unknown URI scheme             | 2 | unsupported URI scheme 'http'                      | \"\$UNBD\" attach http://h/" \
  "-q negative                    | 2 | --queues = -1                                      | \"\$UNBD\" attach \"\$GOOD\" -q -1" \
  "-q 0                           | 2 | --queues must be between 1 and 64, not 0           | \"\$UNBD\" attach \"\$GOOD\" -q 0" \
  "-q 65                          | 2 | --queues must be between 1 and 64, not 65          | \"\$UNBD\" attach \"\$GOOD\" -q 65" \
  "-q huge                        | 2 | --queues = 99999999999                             | \"\$UNBD\" attach \"\$GOOD\" -q 99999999999" \
  "-d negative                    | 2 | --depth = -5                                       | \"\$UNBD\" attach \"\$GOOD\" -d -5" \
  "-d 0                           | 2 | --depth must be between 1 and 4096, not 0          | \"\$UNBD\" attach \"\$GOOD\" -d 0" \
  "-d 4097                        | 2 | --depth must be between 1 and 4096, not 4097       | \"\$UNBD\" attach \"\$GOOD\" -d 4097" \
  "-d huge                        | 2 | --depth = 99999999999                              | \"\$UNBD\" attach \"\$GOOD\" -d 99999999999" \
  "-n negative                    | 2 | --id = -1                                          | \"\$UNBD\" attach \"\$GOOD\" -n -1" \
  "-n above the kernel's limit    | 2 | --id must be between 0 and 1048575, not 1048576    | \"\$UNBD\" attach \"\$GOOD\" -n 1048576" \
  "-n beyond 32 bits              | 2 | --id = 4294967296                                  | \"\$UNBD\" attach \"\$GOOD\" -n 4294967296" \
  "--zero-copy unknown            | 2 | --zero-copy: maybe not in {auto,on,off}            | \"\$UNBD\" attach \"\$GOOD\" --zero-copy maybe" \
  "--payload-ops unknown          | 2 | --payload-ops must be                              | \"\$UNBD\" attach \"\$GOOD\" --payload-ops fast" \
  "--io-timeout negative          | 2 | --io-timeout wants a number of seconds, not '-1'   | \"\$UNBD\" attach \"\$GOOD\" --io-timeout -1" \
  "--reconnect-timeout a word     | 2 | or 'inf', not 'soon'                               | \"\$UNBD\" attach \"\$GOOD\" --reconnect-timeout soon" \
  "--durability-log-size 1T       | 2 | --durability-log-size wants a size like 64M        | \"\$UNBD\" attach \"\$GOOD\" --durability-log-size 1T" \
  "--durability-log-size tiny     | 2 | --durability-log-size must be at least 1024K       | \"\$UNBD\" attach \"\$GOOD\" --durability-log-size 10" \
  "--metrics without a port       | 2 | --metrics '127.0.0.1': no port                     | \"\$UNBD\" attach \"\$GOOD\" --metrics 127.0.0.1" \
  "--metrics port 0               | 2 | --metrics ':0': the port must be from 1 to 65535   | \"\$UNBD\" attach \"\$GOOD\" --metrics :0" \
  "--metrics port 65536           | 2 | the port must be a number from 0 to 65535          | \"\$UNBD\" attach \"\$GOOD\" --metrics 127.0.0.1:65536" \
  "--metrics port a word          | 2 | the port must be a number                          | \"\$UNBD\" attach \"\$GOOD\" --metrics 127.0.0.1:http" \
  "--metrics host a name          | 2 | 'localhost' is not an IP address                   | \"\$UNBD\" attach \"\$GOOD\" --metrics localhost:9100" \
  "--metrics IPv6 without []      | 2 | an IPv6 address needs brackets                     | \"\$UNBD\" attach \"\$GOOD\" --metrics ::1:9100" \
  "--metrics unbalanced [         | 2 | unbalanced brackets                                | \"\$UNBD\" attach \"\$GOOD\" --metrics [::1:9100" \
  "info timeout 0                 | 2 | must be positive numbers of seconds                | \"\$UNBD\" info --connect-timeout 0 \"\$GOOD\"" \
  "detach without a device        | 2 | give a device (/dev/ublkbN or N) or --all          | \"\$UNBD\" detach" \
  "detach of a disk not unbd's    | 2 | '/dev/sda' is not a unbd device                    | \"\$UNBD\" detach /dev/sda" \
  "resize of a word               | 2 | 'abc' is not a unbd device                         | \"\$UNBD\" resize abc" \
  "detach of nothing              | 3 | no unbd device 7 (detached already?)               | \"\$UNBD\" detach 7" \
  "recover of nothing             | 3 | no state file $UNBD_STATE_DIR/7.json               | \"\$UNBD\" recover 7" \
  "restart of nothing             | 3 | no state file $UNBD_STATE_DIR/7.json               | \"\$UNBD\" restart /dev/ublkb7" \
  "resize of nothing              | 3 | no state file $UNBD_STATE_DIR/7.json               | \"\$UNBD\" resize 7" \
  "stats of nothing               | 3 | no state file $UNBD_STATE_DIR/7.json               | \"\$UNBD\" stats 7" \
  "stats of a word                | 2 | 'abc' is not a unbd device                         | \"\$UNBD\" stats abc" \
  "stats, state file corrupt      | 1 | $UNBD_STATE_DIR/5.json is corrupt                  | \"\$UNBD\" stats 5" \
  "detach, state file corrupt     | 1 | $UNBD_STATE_DIR/5.json is corrupt                  | \"\$UNBD\" detach 5" \
  "recover, state file corrupt    | 1 | $UNBD_STATE_DIR/5.json is corrupt                  | \"\$UNBD\" recover 5" \
  "detach, state file newer       | 1 | state file version 99 is from a newer unbd         | \"\$UNBD\" detach 6" \
  "recover, state file newer      | 1 | state file version 99 is from a newer unbd         | \"\$UNBD\" recover 6" \
  "socket path is a regular file  | 1 | $TESTDIR/not-a-socket is not a socket              | \"\$UNBD\" info \"nbd+unix:///?socket=\$TESTDIR/not-a-socket\"" \
  "socket path missing            | 1 | No such file or directory                          | \"\$UNBD\" info \"nbd+unix:///?socket=\$TESTDIR/nothing\""
# A port someone else listens on: refused before anything is connected.
BUSY_PORT=$(pick_port)
python3 -c "import socket, time
s = socket.socket(); s.bind(('127.0.0.1', $BUSY_PORT)); s.listen(); time.sleep(300)" &
cleanup_fn "kill $! 2>/dev/null"
for _ in $(seq 100); do (: </dev/tcp/127.0.0.1/$BUSY_PORT) 2>/dev/null && break; sleep 0.05; done
check_bad_input \
  "--metrics on a port in use     | 1 | cannot serve metrics on 127.0.0.1:$BUSY_PORT: Address already in use | \"\$UNBD\" attach \"\$GOOD\" --metrics 127.0.0.1:$BUSY_PORT"
if [ ! -e /dev/ublk-control ] && [ "$(id -u)" = 0 ]; then
  check_bad_input \
  "attach, this host has no ublk  | 1 | ublk is not available                              | \"\$UNBD\" attach \"\$GOOD\""
fi

# The unreadable state files were left as they were, and `list` says it
# skips them (a warning each) while still listing.
[ -s "$UNBD_STATE_DIR/5.json" ] && grep -q '"version": 99' "$UNBD_STATE_DIR/6.json" || fail "a state file was changed"
"$UNBD" list >"$TESTDIR/list" 2>"$STDERR" || fail "unbd list with unreadable state files failed: $(cat "$STDERR")"
[ "$(grep -c '^unbd: warning: skipped ' "$STDERR")" = 2 ] || fail "list: expected two warnings: $(cat "$STDERR")"
