#!/bin/bash
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
# selftest.sh stages a one-line program through CSI_SCST_BIN; it must be on PATH in the guest.
step "CSI_SCST_BIN is /opt/csi-scst/bin" test "$CSI_SCST_BIN" = /opt/csi-scst/bin
step "staged program runs from PATH" sh -c 'test "$(csi-scst-selftest)" = "hello from CSI_SCST_BIN"'
