#!/usr/bin/env bash
# nbdkit file dir=: each file is a named export with its own size; a fixed
# description is passed through; --list names them all, as nbdinfo --list does.
. "$(dirname "$0")/../functions.sh"
. "$(dirname "$0")/support/info.sh"

mkdir "$TESTDIR/dir"
truncate -s 1M "$TESTDIR/dir/disk1"
truncate -s 3M "$TESTDIR/dir/disk2"
start_nbdkit -P "$TESTDIR/pid" -U "$TESTDIR/sock" --filter=exportname file dir="$TESTDIR/dir" \
  exportdesc=fixed:"test disk"
sock="socket=$TESTDIR/sock"

agree_with_nbdinfo "nbd+unix:///disk1?$sock"
expect_field export_name '"disk1"'
expect_field size_bytes 1048576
expect_field description '"test disk"'
agree_with_nbdinfo "nbd+unix:///disk2?$sock"
expect_field size_bytes 3145728

"$UNBD" info --list "nbd+unix:///?$sock" >"$TESTDIR/list" || fail "unbd info --list failed"
grep -qx 'export="disk1"' "$TESTDIR/list" || fail "list lacks disk1: $(cat "$TESTDIR/list")"
grep -qx 'export="disk2"' "$TESTDIR/list" || fail "list lacks disk2: $(cat "$TESTDIR/list")"
"$UNBD" info --list --json "nbd+unix:///?$sock" >"$TESTDIR/ours.json" || fail "unbd info --list --json failed"
nbdinfo --list --json "nbd+unix:///?$sock" >"$TESTDIR/theirs.json" || fail "nbdinfo --list failed"
"$PYTHON" - "$TESTDIR/ours.json" "$TESTDIR/theirs.json" <<'PY' || fail "export lists differ"
import json, sys
ours = sorted(e["export_name"] for e in json.load(open(sys.argv[1]))["exports"])
theirs = sorted(e["export-name"] for e in json.load(open(sys.argv[2]))["exports"])
print("ours", ours, "theirs", theirs)
sys.exit(ours != theirs)
PY
