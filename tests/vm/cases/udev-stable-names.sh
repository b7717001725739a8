#!/bin/bash
# Stable names through the real udev: with unbd's rule (udev/60-unbd.rules,
# pointed at the binary under test) and systemd-udevd running in the guest,
# `attach --name vol-a` gives /dev/unbd/vol-a -> /dev/ublkbN, and the
# device's udev properties carry the URI and the name. A name in use is
# refused and leaves no device behind; a second name links the second
# device; the link survives a daemon killed and recovered; detach removes it.
. "$(dirname "$0")/../lib.sh"
udevd=/lib/systemd/systemd-udevd
[ -x "$udevd" ] || fail "systemd-udevd is missing (scripts/install-deps.sh installs udev)"

# The rule as the package installs it, with this build's binary.
mkdir -p /etc/udev/rules.d
sed "s|/usr/bin/unbd|$UNBD|" "$UNBD_SOURCE_DIR/udev/60-unbd.rules" >/etc/udev/rules.d/60-unbd.rules
grep -q "IMPORT{program}=\"$UNBD udev-env %k\"" /etc/udev/rules.d/60-unbd.rules || fail "the rule does not run $UNBD"
"$udevd" --daemon || fail "systemd-udevd did not start"
cleanup_fn 'udevadm control --exit'
udevadm settle -t 30

# link_of NAME: where /dev/unbd/NAME points ("" when it does not exist).
link_of() { readlink -f "/dev/unbd/$1" 2>/dev/null || true; }
expect_link() { # NAME DEV
  udevadm settle -t 30
  [ "$(link_of "$1")" = "$2" ] || fail "/dev/unbd/$1 points to '$(link_of "$1")', expected $2"
}
property() { # DEV KEY
  udevadm info --query=property --name="$1" | sed -n "s/^$2=//p"
}

serve_unix disks memory 64M
attach "$URI" --name vol-a
dev_a=$DEV id_a=$ID
expect_link vol-a "$dev_a"
[ "$(property "$dev_a" UNBD_URI)" = "$URI" ] || fail "UNBD_URI of $dev_a is '$(property "$dev_a" UNBD_URI)', expected $URI"
[ "$(property "$dev_a" UNBD_NAME)" = vol-a ] || fail "UNBD_NAME of $dev_a is '$(property "$dev_a" UNBD_NAME)'"
[ "$(property "$dev_a" UNBD_ID)" = "$id_a" ] || fail "UNBD_ID of $dev_a is '$(property "$dev_a" UNBD_ID)'"
[ "$(device_field name)" = vol-a ] || fail "unbd list --json shows name '$(device_field name)'"
echo "attach --name vol-a: /dev/unbd/vol-a -> $dev_a, UNBD_URI=$URI"
# The link is the device: what is written through one is read through the other.
dd if=/dev/urandom of="$TESTDIR/block" bs=4096 count=1 2>/dev/null
dd if="$TESTDIR/block" of=/dev/unbd/vol-a bs=4096 count=1 oflag=direct 2>/dev/null
cmp <(dd if="$dev_a" bs=4096 count=1 iflag=direct 2>/dev/null) "$TESTDIR/block" || fail "/dev/unbd/vol-a is not $dev_a"

# A name in use: refused, nothing made.
before=$(ls /dev/ublkb* | wc -l)
if "$UNBD" attach "$URI" --name vol-a 2>"$STDERR"; then fail "a second device got the name vol-a"; fi
grep -q "the name 'vol-a' is taken by $dev_a" "$STDERR" || fail "unclear refusal: $(cat "$STDERR")"
[ "$(ls /dev/ublkb* | wc -l)" = "$before" ] || fail "the refused attach left a device"
echo "attach --name vol-a again: $(cat "$STDERR")"

attach "$URI" --name vol-b
dev_b=$DEV id_b=$ID
expect_link vol-b "$dev_b"
expect_link vol-a "$dev_a"
# A device without --name gets the properties but no link.
attach "$URI"
dev_c=$DEV id_c=$ID
udevadm settle -t 30
[ "$(property "$dev_c" UNBD_ID)" = "$id_c" ] || fail "the unnamed $dev_c has no UNBD_ID"
[ -z "$(property "$dev_c" UNBD_NAME)" ] || fail "the unnamed $dev_c has UNBD_NAME=$(property "$dev_c" UNBD_NAME)"
[ "$(ls /dev/unbd | sort | tr '\n' ' ')" = "vol-a vol-b " ] || fail "/dev/unbd holds: $(ls /dev/unbd)"
detach "$id_c"

# The daemon of vol-b dies and is recovered: the device, and its link, stay.
ID=$id_b
pid=$(device_field pid)
kill -9 "$pid"
wait_until 30 '[ "$(device_field state)" = quiesced ]' || fail "vol-b is '$(device_field state)' after its daemon died"
"$UNBD" recover "$id_b" >/dev/null 2>"$STDERR" || { cat "$STDERR" >&2; fail "unbd recover $id_b"; }
expect_link vol-b "$dev_b"
[ "$(property "$dev_b" UNBD_NAME)" = vol-b ] || fail "after recover UNBD_NAME of $dev_b is '$(property "$dev_b" UNBD_NAME)'"
[ "$(device_field name)" = vol-b ] || fail "after recover unbd list shows name '$(device_field name)'"
echo "daemon of vol-b killed and recovered: /dev/unbd/vol-b -> $dev_b still"

detach "$id_a"
udevadm settle -t 30
[ ! -e /dev/unbd/vol-a ] || fail "/dev/unbd/vol-a outlived its device"
expect_link vol-b "$dev_b"
detach "$id_b"
udevadm settle -t 30
[ ! -e /dev/unbd/vol-b ] || fail "/dev/unbd/vol-b outlived its device"
expect_no_devices "$id_b.log"
echo "PASS: /dev/unbd/NAME made and removed by udev"
