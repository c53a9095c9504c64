#!/bin/bash
# vm-timeout: 900
# The real LVM backend (csi-scst-backends-vm-check, staged through CSI_SCST_BIN by tests/backends-vm/run.sh)
# against real lvm2 + device-mapper: a VG with a 512 MiB thin pool on the first scratch disk, a thick VG on
# the second.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"

d1=${CSI_SCST_DISK1:?} d2=${CSI_SCST_DISK2:?}
cleanup() { set +e; vm_wipe_disk "$d1"; vm_wipe_disk "$d2"; }
trap cleanup EXIT

setup() {
    pvcreate -y -q "$d1" "$d2"
    vgcreate -q thinvg "$d1"
    vgcreate -q thickvg "$d2"
    lvcreate -q -y --type thin-pool -n tp -L 512M thinvg
}
step "VGs: thinvg (thin pool tp, 512 MiB) and thickvg" setup
step "LVM backend checks" csi-scst-backends-vm-check lvm thinvg tp thickvg
