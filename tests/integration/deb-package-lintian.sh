#!/bin/bash
# `cpack -G DEB` builds the unbd .deb: lintian reports no error (its
# warnings are printed), the control fields are right (dependencies from
# dpkg-shlibdeps), and it holds exactly the expected files: binary, unit, udev rule,
# modules-load.d, man pages, completion, Debian's doc files. The packaged
# binary is stripped, runs, and the unit starts it from /usr/bin.
. "$(dirname "$0")/../functions.sh"
for tool in cpack lintian dpkg-deb dpkg-shlibdeps; do
  command -v $tool >/dev/null || fail "$tool missing (scripts/install-deps.sh installs it)"
done
config=$UNBD_BUILD_DIR/CPackConfig.cmake
[ -f "$config" ] || fail "$config missing: configure the build first"
cpack --config "$config" -B "$TESTDIR/pkg" >"$TESTDIR/cpack.log" 2>&1 ||
  { cat "$TESTDIR/cpack.log"; fail "cpack failed"; }
debs=("$TESTDIR"/pkg/unbd_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single unbd_*.deb: $(ls "$TESTDIR/pkg")"
deb=${debs[0]}
echo "built $(basename "$deb"), $(stat -c %s "$deb") bytes"

# lintian: errors fail, warnings and the rest are shown.
# (Its exit status is 1 on errors, 2 as root: the E: lines decide.)
lintian --info --display-info --tag-display-limit 0 "$deb" >"$TESTDIR/lintian.out" 2>&1 || true
grep -v '^N:' "$TESTDIR/lintian.out" >"$TESTDIR/lintian.tags" || true
sed 's/^/lintian: /' "$TESTDIR/lintian.tags"
grep -q '^E: ' "$TESTDIR/lintian.out" && fail "lintian reports $(grep -c '^E: ' "$TESTDIR/lintian.out") error(s)"
grep -qiE 'internal error|fatal|aborted' "$TESTDIR/lintian.tags" && fail "lintian did not run through"

# Control fields.
field() { dpkg-deb -f "$deb" "$1"; }
version=$("$UNBD" --version | awk '{print $2}')
revision=$(sed -n '1s/^unbd ([^-]*-\([^)]*\)).*/\1/p' "$UNBD_SOURCE_DIR/packaging/debian/changelog")
[ "$(field Package)" = unbd ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version-$revision" ] || fail "Version: $(field Version), expected $version-$revision"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
for lib in libc6 libstdc++6 liburing2 libssl3; do
  [[ $depends == *"$lib "* ]] || fail "Depends lacks $lib (dpkg-shlibdeps): $depends"
done
[ -n "$(field Maintainer)" ] && [ -n "$(field Description)" ] || fail "no Maintainer or Description"
echo "Depends: $depends"

# Contents: exactly these files (directories aside).
expected="./usr/bin/unbd
./usr/lib/unbd/unbd-tls.so
./usr/lib/modules-load.d/unbd.conf
./usr/lib/systemd/system/unbd@.service
./usr/lib/udev/rules.d/60-unbd.rules
./usr/share/bash-completion/completions/unbd
./usr/share/doc/unbd/README.md
./usr/share/doc/unbd/changelog.Debian.gz
./usr/share/doc/unbd/copyright
./usr/share/doc/unbd/examples/unbd.conf.example"
for page in unbd unbd-attach unbd-detach unbd-info unbd-list unbd-recover unbd-resize unbd-restart unbd-stats; do
  expected+=$'\n'"./usr/share/man/man8/$page.8.gz"
done
dpkg-deb -c "$deb" | tee "$TESTDIR/contents" | sed 's/^/contents: /'
files=$(awk '$1 !~ /^d/ {print $6}' "$TESTDIR/contents" | sort)
diff <(sort <<<"$expected") <(echo "$files") ||
  fail "the .deb's files differ from the expected (< expected, > in the .deb)"
awk '$2 != "root/root" {exit 1}' "$TESTDIR/contents" || fail "files not owned by root/root"

# What the files say.
dpkg-deb -x "$deb" "$TESTDIR/root"
file "$TESTDIR/root/usr/bin/unbd" | grep -q ', stripped' || fail "the packaged binary is not stripped"
[ "$("$TESTDIR/root/usr/bin/unbd" --version)" = "$("$UNBD" --version)" ] || fail "the packaged binary's --version differs"
out=$("$TESTDIR/root/usr/bin/unbd" info nbds://127.0.0.1:1/ 2>&1) && fail "info on a closed port succeeded: $out"
[[ $out == *"cannot connect to nbds://127.0.0.1:1/"* ]] || fail "the packaged binary did not load its TLS module: $out"
grep -q '^ExecStart=/usr/bin/unbd attach ' "$TESTDIR/root/usr/lib/systemd/system/unbd@.service" ||
  fail "the packaged unit does not start /usr/bin/unbd: $(grep ExecStart "$TESTDIR/root/usr/lib/systemd/system/unbd@.service")"
grep -qx ublk_drv "$TESTDIR/root/usr/lib/modules-load.d/unbd.conf" || fail "modules-load.d does not load ublk_drv"
zcat "$TESTDIR/root/usr/share/doc/unbd/changelog.Debian.gz" | head -1 | grep -q "^unbd ($version-$revision)" ||
  fail "changelog.Debian.gz does not start with this version"
echo "PASS: $(basename "$deb") ($(stat -c %s "$deb") bytes), lintian: 0 errors, $(grep -c '^W: ' "$TESTDIR/lintian.out" || true) warnings"
