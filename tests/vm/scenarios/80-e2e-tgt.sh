#!/bin/bash
# vm-timeout: 900
# Smoke test of the tgt engine with the kernel initiator: `csi-scst target --engine tgt` starts its own
# tgtd (on a private control port), the controller and node plugin are the real roles; an ext4 volume
# on a thin LV is created, published, staged (login, serial check via tgt's scsi_sn, mkfs), written,
# unstaged, staged again with its data intact, expanded online, and deleted. CSI_SCST_VM_FULL=1 runs
# the whole filesystem lifecycle (snapshot and restore too) instead.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"
. "$CSI_SCST_LIB/driver.sh"
. "$CSI_SCST_LIB/e2e.sh"

vm_require_bin csi-scst
vg=e2evg
ctlport=23260

tgt_targets() { tgtadm -C "$ctlport" --lld iscsi --mode target --op show 2>/dev/null | sed -n 's/^Target \([0-9]*\): .*/\1/p'; }
stop_tgtd() {
    local tid
    for tid in $(tgt_targets); do tgtadm -C "$ctlport" --lld iscsi --mode target --op delete --force --tid "$tid" >/dev/null 2>&1; done
    tgtadm -C "$ctlport" --mode system --op delete >/dev/null 2>&1 || true
    wait_for 30 sh -c '! pgrep -x tgtd'
}
cleanup() {
    set +e
    drv_stop_all
    e2e_force_cleanup
    stop_tgtd
    vgremove -ff -y "$vg" >/dev/null 2>&1
    vm_wipe_disk "$CSI_SCST_DISK1"
}
trap cleanup EXIT

setup() {
    modprobe iscsi_tcp
    pvcreate -q -y "$CSI_SCST_DISK1" >/dev/null
    vgcreate -q "$vg" "$CSI_SCST_DISK1" >/dev/null
    lvcreate -q -y --type thin-pool -n tp -L 1200M "$vg" >/dev/null
    drv_init
}
step "setup: iscsi_tcp, thin pool, TLS material" setup

start_roles() {
    drv_target target tgt --tgt-control-port "$ctlport" --tgt-start-daemon --pool "name=thin,backend=lvm,vg=$vg,thinpool=tp"
    pgrep -a -x tgtd
    tgtadm -C "$ctlport" --mode sys --op show | head -n 5
    drv_controller --default-pool thin &
    drv_node a &
    drv_wait_jobs
}
step "start target (tgt: its own tgtd on control port $ctlport), controller and node a" start_roles

tgt_stage_write() {
    vol_stage tgt a
    check_staged tgt a ext4
    [ "$(pub_ctx tgt a csi-scst.io/lun)" = 1 ]
    tgtadm -C "$ctlport" --lld iscsi --mode target --op show | grep -E 'Target|I_T nexus|Initiator|LUN:|SCSI SN|Backing store path'
    vol_node_publish tgt a
    write_file tgt a before 4
}
tgt_restage() { fs_unstage tgt; fs_restage tgt ext4; }
tgt_delete() { vol_detach tgt a; ctl delete-volume --volume-id "$(vol_id tgt)" >/dev/null; }
tgt_nothing_left() {
    nothing_left
    [ -z "$(tgt_targets)" ] || { echo "tgt targets left: $(tgt_targets)"; return 1; }
}

if vm_full_matrix; then
    E2E_SNAPSHOTS_PIN_SOURCE=0 fs_lifecycle tgt-ext4 thin ext4 64 96
    E2E_SNAPSHOTS_PIN_SOURCE=0 fs_lifecycle tgt-xfs thin xfs 320 384
else
    step "[tgt] CreateVolume 64Mi ext4" fs_create tgt thin ext4 64
    step "[tgt] ControllerPublishVolume to node a" vol_publish tgt a
    step "[tgt] NodeStageVolume (tgt LUN 1, scsi_sn serial) + NodePublishVolume, write 4 MiB" tgt_stage_write
    step "[tgt] unstage, stage again: data intact" tgt_restage
    step "[tgt] online expand to 96Mi" fs_expand tgt 96
    step "[tgt] detach and DeleteVolume" tgt_delete
    step "[tgt] nothing left behind" tgt_nothing_left
fi

stop_roles() { drv_stop a; drv_stop controller; drv_stop target; stop_tgtd; }
step "stop every role and tgtd" stop_roles

teardown() { vgremove -q -y "$vg" >/dev/null; pvremove -q -y "$CSI_SCST_DISK1" >/dev/null; wipefs -a -q "$CSI_SCST_DISK1"; }
step "teardown: VG" teardown
