#!/bin/bash
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
step "scratch disk was cleaned" sh -c '! wipefs -n "$CSI_SCST_DISK1" | grep -q . && ! dmsetup ls | grep -q leakvg'
