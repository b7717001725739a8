#!/bin/bash
# The VM's kernel offers what unbd's zero-copy path needs: GET_FEATURES,
# issued by unbd's own control device code, reports SUPPORT_ZERO_COPY (bit 0)
# and AUTO_BUF_REG (bit 11). Runs in the guest (tests/vm/run -- bash THIS).
# A kernel older than 6.16 (Debian 13's 6.12) has no AUTO_BUF_REG: the case
# prints its features and skips (77).
set -euo pipefail
: "${UNBD_BUILD_DIR:?set by ctest: the build directory}"
check=$UNBD_BUILD_DIR/tests/vm/ublk-features-check
[ -x "$check" ] || { echo "FAIL: $check not built" >&2; exit 1; }
[ -e /dev/ublk-control ] || { echo "FAIL: /dev/ublk-control missing (not in the VM?)" >&2; exit 1; }
if ! "$check"; then
  IFS=. read -r major minor _ <<<"$(uname -r)"
  if [ "$major" -lt 6 ] || { [ "$major" = 6 ] && [ "$minor" -lt 16 ]; }; then
    echo "SKIP: kernel $(uname -r) is older than 6.16: no AUTO_BUF_REG, no zero copy" >&2
    exit 77
  fi
  exit 1
fi
