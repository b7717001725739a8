#!/bin/bash
# The .deb does the README's main job: `dpkg -i` installs it in the guest
# (the host's / under a tmpfs overlay), then the installed /usr/bin/unbd
# attaches a local nbdkit export, mkfs.ext4, mount, write and read back a
# file through a cold cache, umount, detach; the man pages and the bash
# completion are where man and bash-completion find them; `dpkg --purge`
# removes it all. The .deb is build/<preset>/packages/unbd_VERSION-*.deb
# (cpack; scripts/test-all.sh makes it before the VM tests).
. "$(dirname "$0")/../lib.sh"
version=$("$UNBD" --version | awk '{print $2}')
debs=("$UNBD_BUILD_DIR"/packages/unbd_"$version"-*_"$(dpkg --print-architecture)".deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] ||
  fail "no single unbd_$version .deb in $UNBD_BUILD_DIR/packages (make it: cpack --config $UNBD_BUILD_DIR/CPackConfig.cmake)"
deb=${debs[0]}
[ "$deb" -nt "$UNBD" ] || fail "$deb is older than $UNBD: cpack again"
! dpkg-query -W unbd >/dev/null 2>&1 || fail "unbd is already installed here: $(dpkg-query -W unbd)"

t0=$(now)
dpkg -i "$deb" || fail "dpkg -i $(basename "$deb") failed"
echo "dpkg -i $(basename "$deb"): $(since "$t0") s"
cleanup_fn "dpkg --purge unbd >/dev/null 2>&1"
[ "$(dpkg-query -W -f='${Status}' unbd)" = "install ok installed" ] ||
  fail "unbd is not installed after dpkg -i: $(dpkg-query -W -f='${Status}' unbd)"
UNBD=/usr/bin/unbd
[ "$(command -v unbd)" = "$UNBD" ] || fail "unbd on PATH is $(command -v unbd), not $UNBD"
"$UNBD" --version | grep -q "^unbd $version\b" || fail "installed unbd says $("$UNBD" --version)"
for page in unbd unbd-attach unbd-detach; do
  [ "$(man -w "$page")" = "/usr/share/man/man8/$page.8.gz" ] || fail "man -w $page: $(man -w "$page" 2>&1)"
done
[ -f /usr/lib/systemd/system/unbd@.service ] && [ -f /usr/lib/modules-load.d/unbd.conf ] ||
  fail "unit or modules-load.d file missing"
loaded=$(bash --norc -c '. /usr/share/bash-completion/bash_completion; _completion_loader unbd; complete -p unbd') ||
  fail "bash-completion does not load a completion for unbd"
[ "$loaded" = "complete -F _unbd unbd" ] || fail "bash-completion loaded: $loaded"

# The main job (scripts/demo.sh), with the installed binary.
serve_unix disk memory 1G
attach "$URI"
pid=$(device_field pid)
[ "$(readlink "/proc/$pid/exe")" = "$UNBD" ] || fail "the device daemon runs $(readlink "/proc/$pid/exe"), not $UNBD"
mnt=$TESTDIR/mnt
mkdir "$mnt"
cleanup_fn "mountpoint -q $mnt && umount $mnt"
mkfs.ext4 -q "$DEV" || fail "mkfs.ext4 $DEV"
mount "$DEV" "$mnt" || fail "mount $DEV"
head -c 64M /dev/urandom >"$TESTDIR/data"
cp "$TESTDIR/data" "$mnt/data" || fail "write to $mnt"
sync
echo 3 >/proc/sys/vm/drop_caches
cmp "$TESTDIR/data" "$mnt/data" || fail "the file read back differs"
"$UNBD" list
umount "$mnt" || fail "umount $DEV"
detach "$ID"
expect_no_devices
echo "main job with the installed $UNBD: 64 MiB written and read back on ext4, detached"

# TLS comes as a module the installed binary loads from /usr/lib/unbd: an
# nbds:// URI gets as far as connecting (to a port nothing listens on).
out=$("$UNBD" info nbds://127.0.0.1:1/ 2>&1) && fail "info on a closed port succeeded: $out"
[[ $out == *"cannot connect to nbds://127.0.0.1:1/"* ]] || fail "the installed binary did not load its TLS module: $out"

dpkg --purge unbd >/dev/null || fail "dpkg --purge unbd failed"
[ ! -e "$UNBD" ] && [ ! -e /usr/lib/unbd ] && [ ! -e /usr/share/man/man8/unbd.8.gz ] || fail "dpkg --purge left files behind"
echo PASS
