#!/bin/bash
# vm-timeout: 1500
# The whole driver on a real kernel, filesystem volumes on LVM exported by LIO: `csi-scst target`
# (LIO, pools "thick" = a VG and "thin" = a thin pool in it), `csi-scst controller` (static engine,
# mutual TLS) and `csi-scst node` (open-iscsi, udev, mkfs, mount) as three processes, driven through
# their gRPC APIs by `csi-scst client` as the sidecars and kubelet would. Each volume goes through its
# whole life (lib/e2e.sh fs_lifecycle): create → publish → stage (login, by-path disk, serial check,
# mkfs) → publish → data → unstage → restage (data intact) → online expand → snapshot → volume from the
# snapshot → delete everything → nothing left.
# Default matrix: thick ext4, thick xfs, thin ext4. CSI_SCST_VM_FULL=1 adds thin xfs.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"
. "$CSI_SCST_LIB/driver.sh"
. "$CSI_SCST_LIB/e2e.sh"

vm_require_bin csi-scst
vg=e2evg

cleanup() {
    set +e
    drv_stop_all
    e2e_force_cleanup
    vgremove -ff -y "$vg" >/dev/null 2>&1
    vm_wipe_disk "$CSI_SCST_DISK1"; vm_wipe_disk "$CSI_SCST_DISK2"
}
trap cleanup EXIT

setup() {
    lio_load
    modprobe iscsi_tcp
    pvcreate -q -y "$CSI_SCST_DISK1" "$CSI_SCST_DISK2" >/dev/null
    vgcreate -q "$vg" "$CSI_SCST_DISK1" "$CSI_SCST_DISK2" >/dev/null
    lvcreate -q -y --type thin-pool -n tp -L 1200M "$vg" "$CSI_SCST_DISK2" >/dev/null
    vgs "$vg"
    drv_init
}
step "setup: LIO and iscsi_tcp loaded, VG $vg (thin pool tp), TLS material" setup

start_roles() {
    drv_target target lio --pool "name=thick,backend=lvm,vg=$vg" --pool "name=thin,backend=lvm,vg=$vg,thinpool=tp" &
    drv_controller &
    drv_node a &
    drv_wait_jobs
    ctl get-capacity --param pool=thick | jq -c .
    ctl get-capacity --param pool=thin | jq -c .
}
step "start target (LIO), controller and node a as separate processes" start_roles

E2E_SNAPSHOTS_PIN_SOURCE=1 fs_lifecycle thick-ext4 thick ext4 64 96
E2E_SNAPSHOTS_PIN_SOURCE=1 fs_lifecycle thick-xfs thick xfs 320 384
E2E_SNAPSHOTS_PIN_SOURCE=0 fs_lifecycle thin-ext4 thin ext4 64 96
if vm_full_matrix; then
    E2E_SNAPSHOTS_PIN_SOURCE=0 fs_lifecycle thin-xfs thin xfs 320 384
fi

stop_roles() { drv_stop a; drv_stop controller; drv_stop target; }
step "stop node, controller and target (SIGTERM)" stop_roles

teardown() {
    vgremove -q -y "$vg" >/dev/null
    pvremove -q -y "$CSI_SCST_DISK1" "$CSI_SCST_DISK2" >/dev/null
    wipefs -a -q "$CSI_SCST_DISK1" "$CSI_SCST_DISK2"
}
step "teardown: VG" teardown
