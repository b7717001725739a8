#!/bin/bash
# `cmake --install` puts each file where Debian looks for it, under any
# prefix, and the installed unit starts the installed binary: with
# --prefix DIR, and with DESTDIR and prefix /usr (as a package build does).
. "$(dirname "$0")/../functions.sh"
installed_files() { (cd "$1" && find . -type f | sort); }
expected() { # PREFIX (without the leading /)
  local p=$1 page
  printf '%s\n' "./$p/bin/unbd" "./$p/lib/unbd/unbd-tls.so" "./$p/lib/modules-load.d/unbd.conf" "./$p/lib/systemd/system/unbd@.service" \
    "./$p/lib/udev/rules.d/60-unbd.rules" \
    "./$p/share/bash-completion/completions/unbd" "./$p/share/doc/unbd/README.md" \
    "./$p/share/doc/unbd/changelog.Debian.gz" "./$p/share/doc/unbd/copyright" \
    "./$p/share/doc/unbd/examples/unbd.conf.example"
  for page in unbd unbd-attach unbd-detach unbd-info unbd-list unbd-recover unbd-resize unbd-restart unbd-stats; do
    echo "./$p/share/man/man8/$page.8.gz"
  done
}

cmake --install "$UNBD_BUILD_DIR" --prefix "$TESTDIR/opt/unbd" >"$TESTDIR/install1.log" ||
  { cat "$TESTDIR/install1.log"; fail "cmake --install --prefix failed"; }
diff <(expected opt/unbd | sort) <(cd "$TESTDIR" && find opt -type f | sed 's|^|./|' | sort) ||
  fail "cmake --install --prefix: files differ (< expected, > installed)"
grep -q "^ExecStart=$TESTDIR/opt/unbd/bin/unbd attach " "$TESTDIR/opt/unbd/lib/systemd/system/unbd@.service" ||
  fail "the unit installed under --prefix does not start that prefix's binary"
grep -q "^IMPORT{program}=\"$TESTDIR/opt/unbd/bin/unbd udev-env %k\"" "$TESTDIR/opt/unbd/lib/udev/rules.d/60-unbd.rules" ||
  fail "the udev rule installed under --prefix does not run that prefix's binary"
"$TESTDIR/opt/unbd/bin/unbd" --version | grep -q '^unbd ' || fail "the installed binary does not run"
# TLS is a module the binary loads from ../lib/unbd: an nbds:// URI gets as
# far as connecting (to a port nothing listens on); without the module it
# says so in one line.
tls_probe() { "$1" info nbds://127.0.0.1:1/ 2>&1; }
out=$(tls_probe "$TESTDIR/opt/unbd/bin/unbd") && fail "info on a closed port succeeded: $out"
[[ $out == *"cannot connect to nbds://127.0.0.1:1/"* ]] || fail "the installed binary did not load its TLS module: $out"
mkdir -p "$TESTDIR/lone/bin" && cp "$TESTDIR/opt/unbd/bin/unbd" "$TESTDIR/lone/bin/"
out=$(tls_probe "$TESTDIR/lone/bin/unbd") && fail "info on a closed port succeeded: $out"
[[ $out == *"has no TLS module (unbd-tls.so is neither in $TESTDIR/lone/bin nor"* && $out != *$'\n'* ]] ||
  fail "a binary without its TLS module does not say so in one line: $out"
"$TESTDIR/lone/bin/unbd" list >/dev/null || fail "a binary without its TLS module cannot run 'unbd list'"

DESTDIR=$TESTDIR/root cmake --install "$UNBD_BUILD_DIR" --prefix /usr >"$TESTDIR/install2.log" ||
  { cat "$TESTDIR/install2.log"; fail "DESTDIR=... cmake --install --prefix /usr failed"; }
diff <(expected usr | sort) <(installed_files "$TESTDIR/root") ||
  fail "DESTDIR install: files differ (< expected, > installed)"
grep -q '^ExecStart=/usr/bin/unbd attach ' "$TESTDIR/root/usr/lib/systemd/system/unbd@.service" ||
  fail "the unit installed with DESTDIR does not start /usr/bin/unbd"
out=$(tls_probe "$TESTDIR/root/usr/bin/unbd") && fail "info on a closed port succeeded: $out"
[[ $out == *"cannot connect to nbds://127.0.0.1:1/"* ]] || fail "the DESTDIR binary did not load its TLS module: $out"
bad=$(find "$TESTDIR/root" -type d ! -perm 755) && [ -z "$bad" ] || fail "directories not 0755: $bad"
echo PASS
