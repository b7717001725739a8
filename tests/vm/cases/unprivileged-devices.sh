#!/bin/bash
# Unprivileged devices (UBLK_F_UNPRIVILEGED_DEV): ordinary users attach
# disks without root, with what the administrator sets up once (README,
# "Unprivileged devices"): a group that may open /dev/ublk-control, and
# unbd's udev rule, which gives an unprivileged device's nodes to its owner.
#
#   alice attaches an nbdkit export: both nodes are hers (0600), copy mode,
#     fio --verify=crc32c on the raw device, libnbd reads what she wrote;
#   bob (same group) can neither read her disk nor detach it, nor make
#     root's tools take a state file he plants for it;
#   root lists it (owner uid shown) and could detach it; alice detaches it;
#   alice grows a device with `unbd resize` (6.16+);
#   what the kernel does not allow is refused in one line: --zero-copy=on,
#     timeouts longer than the kernel lets a request wait, root with
#     --unprivileged; so are a user outside the group (no /dev/ublk-control)
#     and one without a runtime directory (no login session);
#   a server that stops answering: the requests fail with EIO after
#     --io-timeout + --reconnect-timeout (10 + 15 s), before the kernel's
#     30 s timeout would SIGKILL the daemon; the daemon lives on and the disk
#     works again once the server is back;
#   root lowering the kernel's timeout below unbd's (queue/io_timeout 2 s):
#     the kernel kills the daemon and removes the disk (the documented
#     limit), the request fails, and alice's `unbd detach` cleans up.
. "$(dirname "$0")/../lib.sh"
udevd=/lib/systemd/systemd-udevd
[ -x "$udevd" ] || fail "systemd-udevd is missing (scripts/install-deps.sh installs udev)"
require_kernel UNPRIVILEGED -- "ordinary users cannot make ublk devices on this kernel"

# ---- the administrator's one-time set-up --------------------------------
groupadd --system ublk
useradd --no-create-home --uid 4101 --groups ublk alice
useradd --no-create-home --uid 4102 --groups ublk bob
useradd --no-create-home --uid 4103 charlie             # not in the group
useradd --no-create-home --uid 4104 --groups ublk dave  # no login session: no /run/user/4104
for uid in 4101 4102; do  # what systemd-logind makes for a session
  install -d -m 0700 -o "$uid" -g "$uid" "/run/user/$uid"
done
mkdir -p /etc/udev/rules.d
echo 'KERNEL=="ublk-control", GROUP="ublk", MODE="0660"' >/etc/udev/rules.d/59-ublk-control.rules
sed "s|/usr/bin/unbd|$UNBD|" "$UNBD_SOURCE_DIR/udev/60-unbd.rules" >/etc/udev/rules.d/60-unbd.rules
"$udevd" --daemon || fail "systemd-udevd did not start"
cleanup_fn 'udevadm control --exit'
udevadm trigger --action=change /sys/class/misc/ublk-control
udevadm settle -t 30
[ "$(stat -c %G:%a /dev/ublk-control)" = ublk:660 ] ||
  fail "/dev/ublk-control is $(stat -c %U:%G:%a /dev/ublk-control) after the rule"
echo "administrator: /dev/ublk-control is group ublk, 0660; alice and bob are in it"

# as USER CMD...: run CMD as USER in a session-like environment.
as() {
  local user=$1 uid; shift
  uid=$(id -u "$user")
  setpriv --reuid="$user" --regid="$user" --init-groups \
    env -i PATH="$PATH" HOME=/ XDG_RUNTIME_DIR="/run/user/$uid" "$@"
}
owner_mode() { stat -c %U:%a "$1"; }

# ---- alice attaches, uses and detaches her disk --------------------------
PORT=$(pick_port)
start_nbdkit -P "$TESTDIR/a.pid" -i 127.0.0.1 -p "$PORT" memory 64M
URI=nbd://127.0.0.1:$PORT/
json=$(as alice "$UNBD" attach --json --name alice-disk "$URI" 2>"$TESTDIR/err") ||
  fail "alice's attach failed: $(cat "$TESTDIR/err")"
ID=$(jq -er .id <<<"$json") DEV=$(jq -er .dev <<<"$json")
cleanup_fn "as alice $UNBD detach $ID 2>/dev/null || $UNBD detach $ID 2>/dev/null || true"
[ "$(jq -er .owner_uid <<<"$json")" = 4101 ] || fail "attach --json: owner_uid is not 4101: $json"
[[ $(jq -er .zero_copy <<<"$json") == off/* ]] || fail "an unprivileged device is not in copy mode: $json"
[ -e "/run/user/4101/unbd/$ID.json" ] || fail "alice's state file is not in /run/user/4101/unbd"
[ ! -e "/run/unbd/$ID.json" ] || fail "alice's state file is in root's /run/unbd"
udevadm settle -t 30
for node in "/dev/ublkc$ID" "$DEV"; do
  [ "$(owner_mode "$node")" = alice:600 ] || fail "$node is $(owner_mode "$node"), expected alice:600"
done
[ "$(readlink -f /dev/unbd/alice-disk)" = "$DEV" ] || fail "/dev/unbd/alice-disk does not point to $DEV"
echo "alice: attach -> $DEV (/dev/unbd/alice-disk); /dev/ublkc$ID and $DEV are alice:600; $(jq -r .zero_copy <<<"$json")"

as alice fio --name=verify --filename="$DEV" --ioengine=io_uring --direct=1 --rw=randwrite \
  --bssplit=4k/40:64k/30:512k/30 --iodepth=16 --size=32M --verify=crc32c --randseed=4101 --verify_state_save=0 \
  >"$TESTDIR/fio.out" || { cat "$TESTDIR/fio.out"; fail "alice's fio verify on $DEV"; }
grep -E 'WRITE:|READ:' "$TESTDIR/fio.out"
as alice "$UNBD" list --json >"$TESTDIR/list" || fail "alice's unbd list failed"
[ "$(jq -r ".[] | select(.id == $ID) | .daemon" "$TESTDIR/list")" = running ] ||
  fail "alice's unbd list does not show her device running: $(cat "$TESTDIR/list")"
writes=$(as alice "$UNBD" stats --json "$ID" | jq -er '.io.writes') || fail "alice's unbd stats failed"
[ "$writes" -gt 0 ] || fail "alice's unbd stats shows no writes"
echo "alice: unbd list shows her device running; unbd stats: $writes writes"

# bob: not his disk.
if as bob dd if="$DEV" of=/dev/null bs=4k count=1 2>"$TESTDIR/err"; then fail "bob read alice's disk"; fi
grep -q "Permission denied" "$TESTDIR/err" || fail "bob's read failed unclearly: $(cat "$TESTDIR/err")"
if as bob "$UNBD" detach "$ID" 2>"$TESTDIR/err"; then fail "bob detached alice's disk"; fi
grep -q "permission denied" "$TESTDIR/err" || fail "bob's detach failed unclearly: $(cat "$TESTDIR/err")"
[ "$(wc -l <"$TESTDIR/err")" = 1 ] || fail "bob's refusal is not one line: $(cat "$TESTDIR/err")"
[ -b "$DEV" ] || fail "bob's detach removed $DEV"
echo "bob: read refused, detach refused: $(cat "$TESTDIR/err")"

# bob plants a state file for alice's device in his own dir: root's tools
# read a user's device's state from its owner's dir only.
as bob sh -c "mkdir -p /run/user/4102/unbd && jq '.uri = \"nbd://bob.example/\"' \
  >/run/user/4102/unbd/$ID.json" </run/user/4101/unbd/$ID.json || fail "bob could not write his own dir"
[ "$("$UNBD" list --json | jq -r ".[] | select(.id == $ID) | .uri")" = "$URI" ] ||
  fail "root's unbd list took bob's planted state file for alice's device"
"$UNBD" stats "$ID" >/dev/null || fail "root's unbd stats did not reach alice's daemon"
rm "/run/user/4102/unbd/$ID.json"
echo "root: a state file bob planted for device $ID is ignored; stats reach alice's daemon"

# root sees it, and reads the same bytes as libnbd.
"$UNBD" list >"$TESTDIR/list" || fail "root's unbd list failed"
grep -q "owner: uid 4101" "$TESTDIR/list" || fail "root's unbd list does not show alice's device: $(cat "$TESTDIR/list")"
dev_sum=$(dev_sha256 "$DEV")
[ "$(nbd_sha256 "$URI")" = "$dev_sum" ] || fail "the export (libnbd) differs from alice's device"
echo "root: unbd list shows device $ID, owner uid 4101; libnbd reads what alice wrote"

as alice "$UNBD" detach "$ID" || fail "alice could not detach her device"
[ ! -e "$DEV" ] && [ ! -e "/dev/ublkc$ID" ] || fail "$DEV still exists after alice's detach"
[ -z "$(ls -A /run/user/4101/unbd)" ] || fail "alice's detach left $(ls -A /run/user/4101/unbd)"
echo "alice: detach -> gone, nothing left in /run/user/4101/unbd"

# ---- alice grows her disk with the export (UPDATE_SIZE, 6.16+) -----------
if kernel_has UPDATE_SIZE; then
  img=$TESTDIR/alice.img
  truncate -s 64M "$img"
  FPORT=$(pick_port)
  start_nbdkit -P "$TESTDIR/f.pid" -i 127.0.0.1 -p "$FPORT" file "$img"
  json=$(as alice "$UNBD" attach --json "nbd://127.0.0.1:$FPORT/" 2>"$TESTDIR/err") ||
    fail "alice's attach of a file export failed: $(cat "$TESTDIR/err")"
  ID=$(jq -er .id <<<"$json") DEV=$(jq -er .dev <<<"$json")
  cleanup_fn "as alice $UNBD detach $ID 2>/dev/null || $UNBD detach $ID 2>/dev/null || true"
  truncate -s 96M "$img"
  as alice "$UNBD" resize "$ID" >"$TESTDIR/resize.out" 2>&1 || fail "alice's resize: $(cat "$TESTDIR/resize.out")"
  size=$(as alice blockdev --getsize64 "$DEV")
  [ "$size" = $((96 << 20)) ] || fail "after alice's resize $DEV has $size bytes, expected 96M"
  echo "alice: unbd resize: $(cat "$TESTDIR/resize.out")"
  as alice "$UNBD" detach "$ID" || fail "alice could not detach her file-backed device"
else
  echo "(this kernel has no UPDATE_SIZE: resize is not tried)"
fi

# ---- what an unprivileged device cannot do: one line, nothing made -------
refused() {  # STATUS TEXT USER ARGS...
  local status=$1 text=$2 user=$3 rc=0; shift 3
  as "$user" "$UNBD" attach "$URI" "$@" 2>"$TESTDIR/err" >/dev/null || rc=$?
  [ "$rc" = "$status" ] || fail "$user: attach $* exited $rc, expected $status: $(cat "$TESTDIR/err")"
  grep -qF "$text" "$TESTDIR/err" || fail "$user: attach $*: unclear: $(cat "$TESTDIR/err")"
  [ -z "$(ls /dev/ublkb* 2>/dev/null)" ] || fail "$user: attach $* left a device"
  echo "$user attach $*: $(cat "$TESTDIR/err")"
}
refused 2 "the kernel refuses zero copy" alice --zero-copy=on
refused 2 "lets a request wait longer than an unprivileged device may" alice --reconnect-timeout 60
refused 2 "lets a request wait longer than an unprivileged device may" alice --io-timeout 0
refused 2 "applies to root's devices only" alice --on-daemon-loss=fail
if "$UNBD" attach "$URI" --unprivileged 2>"$TESTDIR/err"; then fail "root attached with --unprivileged"; fi
grep -q "is for ordinary users" "$TESTDIR/err" || fail "root --unprivileged: unclear: $(cat "$TESTDIR/err")"
refused 1 "the administrator must open it to them once" charlie
refused 1 "there is no runtime directory for uid 4104" dave

# ---- a server that stops answering: EIO before the kernel's 30 s ----------
json=$(as alice "$UNBD" attach --json "$URI" 2>"$TESTDIR/err") || fail "alice's attach failed: $(cat "$TESTDIR/err")"
ID=$(jq -er .id <<<"$json") DEV=$(jq -er .dev <<<"$json")
cleanup_fn "as alice $UNBD detach $ID 2>/dev/null || $UNBD detach $ID 2>/dev/null || true"
daemon=$(jq -er .pid <<<"$json")
[ "$(sysfs "$DEV" queue/io_timeout)" = 30000 ] || echo "note: the kernel's request timeout is $(sysfs "$DEV" queue/io_timeout) ms"
kill -STOP "$(cat "$TESTDIR/a.pid")"
cleanup_fn "kill -CONT $(cat "$TESTDIR/a.pid") 2>/dev/null || true"
t0=$(now)
if as alice dd if="$DEV" of=/dev/null bs=4k count=1 skip=100 iflag=direct 2>"$TESTDIR/err"; then
  fail "a read succeeded while the server was stopped"
fi
waited=$(since "$t0")
grep -q "Input/output error" "$TESTDIR/err" || fail "the read failed unclearly: $(cat "$TESTDIR/err")"
kill -0 "$daemon" || fail "the daemon died while the server was stopped (after $waited s)"
awk -v w="$waited" 'BEGIN { exit !(w < 30) }' || fail "the read failed only after $waited s (the kernel's timeout is 30 s)"
echo "server stopped: the read failed with EIO after $waited s; the daemon (pid $daemon) lives"
kill -CONT "$(cat "$TESTDIR/a.pid")"
wait_until 60 'as alice dd if="$DEV" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null' ||
  fail "$DEV did not work again within 60 s of the server coming back"
echo "server back: $DEV reads again after ${WAITED} s"

# ---- the kernel's own limit: a timeout shorter than unbd's ----------------
echo 2000 >"/sys/block/ublkb$ID/queue/io_timeout"
kill -STOP "$(cat "$TESTDIR/a.pid")"
if as alice dd if="$DEV" of=/dev/null bs=4k count=1 skip=200 iflag=direct 2>"$TESTDIR/err"; then
  fail "a read succeeded while the server was stopped"
fi
wait_until 30 '! kill -0 '"$daemon"' 2>/dev/null && [ ! -e "$DEV" ]' ||
  fail "the kernel did not end the daemon and the disk (queue/io_timeout 2 s)"
dmesg | grep -i ublk | tail -n 3 || true
kill -CONT "$(cat "$TESTDIR/a.pid")"
as alice "$UNBD" list --json >"$TESTDIR/list"
echo "kernel timeout 2 s: daemon killed, $DEV removed; alice's list: $(jq -c ".[] | select(.id == $ID) | {state, daemon}" "$TESTDIR/list")"
echo "its log ends: $(tail -n 1 "/run/user/4101/unbd/$ID.log")"
as alice "$UNBD" detach "$ID" 2>"$TESTDIR/err" || fail "alice's detach after the kill failed: $(cat "$TESTDIR/err")"
# A daemon that did not end cleanly keeps its log (as for root's devices).
[ "$(ls -A /run/user/4101/unbd)" = "$ID.log" ] || fail "detach after the kill left $(ls -A /run/user/4101/unbd)"
expect_no_devices
