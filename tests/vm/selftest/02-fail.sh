#!/bin/bash
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
boom() { echo boom-output; false; echo not-reached; }
step "first" true
step "fails on purpose" boom
step "never reached" true
