#!/bin/bash
# vm-timeout: 5
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
step "sleep past the timeout" sleep 60
