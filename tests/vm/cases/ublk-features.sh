#!/bin/bash
# The VM's kernel offers what unbd's zero-copy path needs: GET_FEATURES,
# issued by unbd's own control device code, reports SUPPORT_ZERO_COPY (bit 0)
# and AUTO_BUF_REG (bit 11). Runs in the guest (tests/vm/run -- bash THIS).
set -euo pipefail
: "${UNBD_BUILD_DIR:?set by ctest: the build directory}"
check=$UNBD_BUILD_DIR/tests/vm/ublk-features-check
[ -x "$check" ] || { echo "FAIL: $check not built" >&2; exit 1; }
[ -e /dev/ublk-control ] || { echo "FAIL: /dev/ublk-control missing (not in the VM?)" >&2; exit 1; }
"$check"
