#!/bin/bash
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
leak() { pvcreate -y "$CSI_SCST_DISK1"; vgcreate leakvg "$CSI_SCST_DISK1"; lvcreate -y -n lv -L 8M leakvg; }
step "leave a VG behind" leak
