#!/bin/bash
# Runs one libFuzzer target of unbd for a fixed time:
#   tests/fuzz/run.sh TARGET SECONDS [libFuzzer options...]
# e.g. tests/fuzz/run.sh handshake 600, or tests/fuzz/run.sh reply 3600 -max_len=65536
# TARGET is a fuzz_TARGET binary of the fuzz preset's build (build/fuzz, or
# $UNBD_FUZZ_BUILD_DIR). The seeds in tests/fuzz/corpus/TARGET are read,
# never written: what the fuzzer learns goes to build/fuzz/corpus/TARGET,
# and a crashing input to build/fuzz/artifacts/TARGET/. Exits non-zero on
# a crash, leak, sanitizer report, timeout or out-of-memory; prints the
# executions done (libFuzzer's "Done N runs in S second(s)").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:?usage: run.sh TARGET SECONDS [libFuzzer options...]}
seconds=${2:?usage: run.sh TARGET SECONDS [libFuzzer options...]}
shift 2
build=${UNBD_FUZZ_BUILD_DIR:-$here/../../build/fuzz}
binary=$build/tests/fuzz/fuzz_$target
[ -x "$binary" ] || { echo "run.sh: $binary not built (cmake --preset fuzz && cmake --build --preset fuzz)" >&2; exit 2; }
seeds=$here/corpus/$target
dict=$here/dict/$target.dict
work=$build/corpus/$target
artifacts=$build/artifacts/$target/
mkdir -p "$work" "$artifacts"
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$artifacts")
[ -f "$dict" ] && args+=(-dict="$dict")
log=$build/fuzz-$target.log
set +e
"$binary" "${args[@]}" "$@" "$work" "$seeds" 2>&1 | tee "$log" | grep -E '^(INFO: Seed|#[0-9]+[[:space:]]+(INITED|DONE)|Done |==[0-9]+==ERROR|SUMMARY|.*runtime error)'
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
  echo "fuzz_$target FAILED (exit $status): full log $log, inputs in $artifacts" >&2
  tail -n 40 "$log" >&2
fi
exit "$status"
