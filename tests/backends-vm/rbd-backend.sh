#!/bin/bash
# vm-timeout: 900
# The real RBD backend's krbd attach/detach (csi-scst-backends-vm-check, staged through CSI_SCST_BIN by
# tests/backends-vm/run.sh) against a single-node Ceph cluster in the guest.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/ceph.sh"

cdir=$CSI_SCST_WORK/ceph
cleanup() {
    set +e
    for d in /sys/bus/rbd/devices/*; do [ -e "$d" ] && echo "${d##*/}" > /sys/bus/rbd/remove; done
    ceph_stop "$cdir"
}
trap cleanup EXIT

cluster() { ceph_bootstrap "$cdir"; ceph_wait_osd "$cdir"; wait_for 300 ceph_mgr_available "$cdir"; ceph_pool "$cdir" rbd; }
step "ceph: single-node cluster with pool rbd" cluster
step "RBD backend krbd checks" csi-scst-backends-vm-check rbd "$cdir/ceph.conf" rbd
