#!/bin/bash
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
step "true" true
step "environment is set" test -n "$CSI_SCST_WORK" -a -d "$CSI_SCST_RESULTS" -a -b "$CSI_SCST_DISK1"
