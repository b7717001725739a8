#!/bin/bash
# Records the server side of real `unbd info` and `unbd info --list`
# handshakes with nbdkit, qemu-nbd and nbd-server into
# tests/fuzz/corpus/handshake/real-* (the handshake target's seeds).
# Needs the default build's unbd; rewrites only the real-* files.
#   bash tests/fuzz/record-handshakes.sh
. "$(dirname "$0")/../functions.sh"
corpus=$UNBD_SOURCE_DIR/tests/fuzz/corpus/handshake
mkdir -p "$corpus"

# record NAME SETUP UPSTREAM [unbd info args...]: one handshake through the proxy.
record() {
  local name=$1 setup=$2 upstream=$3; shift 3
  local sock=$TESTDIR/proxy.sock
  python3 "$UNBD_SOURCE_DIR/tests/fuzz/record-proxy.py" "$sock" "$upstream" "$corpus/real-$name" "$setup" \
    >"$TESTDIR/proxy.out" &
  local proxy=$!
  for _ in $(seq 50); do grep -q ready "$TESTDIR/proxy.out" 2>/dev/null && break; sleep 0.1; done
  "$UNBD" info "$@" "nbd+unix:///${EXPORT:-}?socket=$sock" >/dev/null 2>&1 || true
  wait "$proxy"
  echo "recorded real-$name ($(stat -c %s "$corpus/real-$name") bytes)"
}
# Setup bytes (handshake_fuzz.cpp): 0x02 `info` (structured replies asked
# for), 0x01 `info --list`, 0x0a `info` fed 1 byte at a time.

start_nbdkit -P "$TESTDIR/kit.pid" -U "$TESTDIR/kit.sock" memory 1M
record nbdkit-memory 0x02 "$TESTDIR/kit.sock"
record nbdkit-memory-bytewise 0x0a "$TESTDIR/kit.sock"
record nbdkit-list 0x01 "$TESTDIR/kit.sock" --list
EXPORT=missing record nbdkit-wrong-export 0x02 "$TESTDIR/kit.sock"

start_nbdkit -P "$TESTDIR/kit2.pid" -U "$TESTDIR/kit2.sock" --no-sr -r --filter=blocksize memory 1M \
  minblock=4096 maxdata=65536
record nbdkit-no-sr-readonly-blocksize 0x02 "$TESTDIR/kit2.sock"

start_nbdkit -P "$TESTDIR/kit3.pid" -U "$TESTDIR/kit3.sock" --mask-handshake=0 memory 1M
record nbdkit-plain-newstyle 0x02 "$TESTDIR/kit3.sock"

start_nbdkit -P "$TESTDIR/kit4.pid" -U "$TESTDIR/kit4.sock" -o memory 1M
record nbdkit-oldstyle 0x02 "$TESTDIR/kit4.sock"

printf 'alice:%s\n' 0123456789abcdef0123456789abcdef >"$TESTDIR/psk"
start_nbdkit -P "$TESTDIR/kit5.pid" -U "$TESTDIR/kit5.sock" --tls=require --tls-psk="$TESTDIR/psk" memory 1M
record nbdkit-tls-required 0x02 "$TESTDIR/kit5.sock"

start_nbdkit -P "$TESTDIR/kit6.pid" -U "$TESTDIR/kit6.sock" -e named --filter=exportname memory 1M \
  exportname=named exportname=other exportdesc=fixed:"a test export"
record nbdkit-list-described 0x01 "$TESTDIR/kit6.sock" --list
EXPORT=named record nbdkit-named-described 0x02 "$TESTDIR/kit6.sock"

truncate -s 4M "$TESTDIR/qemu.img"
qemu-nbd -t -k "$TESTDIR/qemu.sock" -f raw -x qdisk -D "qemu export" --shared=4 "$TESTDIR/qemu.img" \
  2>"$TESTDIR/qemu.log" &
qemu_pid=$!
cleanup_fn "kill $qemu_pid"
for _ in $(seq 50); do [ -S "$TESTDIR/qemu.sock" ] && break; sleep 0.1; done
EXPORT=qdisk record qemu-nbd 0x02 "$TESTDIR/qemu.sock"
record qemu-nbd-list 0x01 "$TESTDIR/qemu.sock" --list

truncate -s 8M "$TESTDIR/disk.img"
start_nbd_server "$TESTDIR/disk.img" disk flush=true fua=true trim=true
port=$NBD_SERVER_PORT
EXPORT=disk record nbd-server 0x02 "127.0.0.1:$port"
record nbd-server-list 0x01 "127.0.0.1:$port" --list
EXPORT=nope record nbd-server-wrong-export 0x02 "127.0.0.1:$port"
