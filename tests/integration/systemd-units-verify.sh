#!/bin/bash
# The shipped systemd unit passes `systemd-analyze verify` without a single
# complaint (it prints warnings but exits 0 on many mistakes, so any output
# fails the test); a deliberately broken copy is caught, so the check works.
. "$(dirname "$0")/../functions.sh"
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (scripts/install-deps.sh installs systemd)"
unit=$TESTDIR/unbd@disk0.service
sed "s|/usr/bin/unbd|$UNBD|" "$UNBD_SOURCE_DIR/systemd/unbd@.service" >"$unit"
grep -q "^Type=notify$" "$unit" || fail "the unit is not Type=notify"
grep -q "^RuntimeDirectoryPreserve=yes$" "$unit" || fail "the unit does not keep /run/unbd across restarts"
out=$(systemd-analyze verify --man=no "$unit" 2>&1) || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"

sed 's/^Type=notify$/Type=notifyy/' "$unit" >"$TESTDIR/unbd@broken.service"
out=$(systemd-analyze verify --man=no "$TESTDIR/unbd@broken.service" 2>&1) || true
[ -n "$out" ] || fail "a broken unit passed the check: the check proves nothing"
echo PASS
