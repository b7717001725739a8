#!/bin/bash
# Runs every test of unbd and ends with one line: "N passed, N failed".
#   1. installs what is missing (scripts/install-deps.sh)
#   2. builds the default, asan (ASan + UBSan) and fuzz presets
#   3. host tests (unit + integration: real nbdkit, qemu-nbd, nbd-server) in both builds
#   4. fuzz targets (tests/fuzz, the fuzz preset: clang + libFuzzer), each for
#      UNBD_FUZZ_SECONDS (25); a crash fails its test
#   5. the .deb of the default build (cpack) and its container image
#      (containers/build.sh), for the VM tests that install and run them
#   6. VM tests (ublk end to end) in the default build, inside tests/vm/run's guest
# A test that did not run (skipped, not built, timed out) counts as failed.
# Environment: UNBD_TEST_JOBS (default 2), UNBD_SKIP_VM=1 to leave out steps 5-6
# (the summary then says so; CI never sets it).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=${UNBD_TEST_JOBS:-2}
results=$root/build/test-results
rm -rf "$results"; mkdir -p "$results"

step() { printf '\n==== %s\n' "$*"; }

step "dependencies"
bash scripts/install-deps.sh || { echo "0 passed, 1 failed (dependency installation failed)"; exit 1; }

build_ok=()
presets=(default asan fuzz)
for preset in "${presets[@]}"; do
  step "build ($preset)"
  if cmake --preset "$preset" >"$results/configure-$preset.log" 2>&1 &&
     cmake --build --preset "$preset" -j "$jobs" 2>&1 | tail -n 50; then
    [ "${PIPESTATUS[0]}" = 0 ] && build_ok+=("$preset") || echo "build ($preset) FAILED"
  else
    cat "$results/configure-$preset.log"; echo "configure ($preset) FAILED"
  fi
done

run_ctest() { # preset label-regex junit-name [extra ctest args]
  local preset=$1 labels=$2 name=$3; shift 3
  step "tests: $name"
  ctest --preset "$preset" -L "$labels" --output-junit "$results/$name.xml" "$@"
}
for preset in default asan; do
  if [[ " ${build_ok[*]} " == *" $preset "* ]]; then
    run_ctest "$preset" 'unit|integration' "host-$preset" -j "$jobs"
  fi
done
if [[ " ${build_ok[*]} " == *" fuzz "* ]]; then
  run_ctest fuzz fuzz "fuzz"  # one target at a time: each uses a core for its whole run
fi
if [ "${UNBD_SKIP_VM:-0}" != 1 ] && [[ " ${build_ok[*]} " == *" default "* ]]; then
  # vm/deb-install installs this .deb; without it (cpack failed) that test fails.
  step "package (default): build/default/packages/"
  rm -rf build/default/packages
  cpack --config build/default/CPackConfig.cmake >"$results/cpack-default.log" 2>&1 ||
    { tail -n 30 "$results/cpack-default.log"; echo "cpack (default) FAILED"; }
  ls build/default/packages/*.deb 2>/dev/null
  # vm/container-sidecar loads this image; without it the test builds it in the guest (slower).
  bash containers/build.sh --binary build/default/unbd >"$results/container-image.log" 2>&1 ||
    { tail -n 30 "$results/container-image.log"; echo "containers/build.sh FAILED"; }
  run_ctest default vm "vm-default"
fi

step "summary"
/usr/bin/python3 - "$results" "${#build_ok[@]}" "${UNBD_SKIP_VM:-0}" "${#presets[@]}" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
results, builds_ok, skip_vm, builds = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
passed, failed, not_run = 0, [], []
for path in sorted(glob.glob(f"{results}/*.xml")):
    suite = path.rsplit("/", 1)[1][:-4]
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{suite}: {case.get('name')}"
        status = case.get("status", "")
        if case.find("failure") is not None or case.find("error") is not None or status == "fail":
            failed.append(name)
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            not_run.append(name)
        else:
            passed += 1
for n in failed: print("FAILED:", n)
for n in not_run: print("NOT RUN (counted as failed):", n)
build_failures = builds - builds_ok
nfail = len(failed) + len(not_run) + build_failures
note = []
if build_failures: note.append(f"{build_failures} build(s) failed")
if skip_vm: note.append("VM tests left out by UNBD_SKIP_VM=1")
print(f"{passed} passed, {nfail} failed" + (f" ({'; '.join(note)})" if note else ""))
sys.exit(1 if nfail or passed == 0 else 0)
PY
