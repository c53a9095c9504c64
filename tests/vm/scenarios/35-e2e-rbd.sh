#!/bin/bash
# vm-timeout: 1500
# The whole driver on Ceph RBD mapped with krbd and exported by LIO: a single-node Ceph cluster in the
# VM (mon, mgr, one memstore OSD on 127.0.0.1; the run's only cluster), `csi-scst target` with an rbd
# pool, `csi-scst controller` and `csi-scst node` as separate processes. A filesystem volume goes
# through its whole life (lib/e2e.sh fs_lifecycle: the image is mapped with krbd and exported over
# iblock, snapshots are RBD snapshots, the restored volume an RBD clone); a restarted engine reuses
# the existing mapping; a mapped image in use is neither unmapped nor deleted while published.
# Default: ext4. CSI_SCST_VM_FULL=1 adds xfs.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"
. "$CSI_SCST_LIB/ceph.sh"
. "$CSI_SCST_LIB/driver.sh"
. "$CSI_SCST_LIB/e2e.sh"

vm_require_bin csi-scst
cdir=$CSI_SCST_WORK/ceph
cpool=rbd

cleanup() {
    set +e
    drv_stop_all
    e2e_force_cleanup
    ceph_stop "$cdir"
}
trap cleanup EXIT

cluster() {
    lio_load
    modprobe iscsi_tcp
    modprobe rbd
    ceph_bootstrap "$cdir"
    ceph_wait_osd "$cdir"
    wait_for 300 ceph_mgr_available "$cdir"
    ceph_pool "$cdir" "$cpool"
    vm_ceph "$cdir" -s
    drv_init
}
step "setup: LIO, iscsi_tcp, krbd; ceph mon + mgr + memstore OSD, pool $cpool; TLS material" cluster

start_roles() {
    drv_target target lio --pool "name=ceph,backend=rbd,pool=$cpool,user=admin,keyring=$cdir/keyring.client.admin,conf=$cdir/ceph.conf" &
    drv_controller --default-pool ceph &
    drv_node a &
    drv_wait_jobs
    ctl get-capacity --param pool=ceph | jq -c .
}
step "start target (LIO, rbd pool), controller and node a" start_roles

E2E_SNAPSHOTS_PIN_SOURCE=1 fs_lifecycle rbd-ext4 ceph ext4 64 96 "$cdir" "$cpool"
if vm_full_matrix; then
    E2E_SNAPSHOTS_PIN_SOURCE=1 fs_lifecycle rbd-xfs ceph xfs 320 384 "$cdir" "$cpool"
fi

mappings() { vm_rbd "$cdir" showmapped --format json | jq --arg i "csi-$DRV_INSTANCE-$1" '[.[] | select(.name == $i)] | length'; }
krbd_restart() {
    local key dev out
    vol_create rb "--access-type block" --size 32Mi
    key=$(vid_key "$(vol_id rb)")
    [ "$(mappings "$key")" -eq 1 ]
    vm_rbd "$cdir" showmapped
    vol_attach rb a
    check_staged rb a
    write_block rb a 0 4
    dev=$(vm_rbd "$cdir" showmapped --format json | jq -r --arg i "csi-$DRV_INSTANCE-$key" '.[] | select(.name == $i) | .device')
    grep -H . "$(lio_backstore_dir "csi_${DRV_INSTANCE}_$key")/udev_path"
    # The engine restarts (upgrade, crash): the image stays mapped once, the export on the same device.
    drv_stop target KILL
    drv_target target lio --pool "name=ceph,backend=rbd,pool=$cpool,user=admin,keyring=$cdir/keyring.client.admin,conf=$cdir/ceph.conf"
    ctl get-volume --volume-id "$(vol_id rb)" | jq -c .
    [ "$(mappings "$key")" -eq 1 ]
    [ "$(vm_rbd "$cdir" showmapped --format json | jq -r --arg i "csi-$DRV_INSTANCE-$key" '.[] | select(.name == $i) | .device')" = "$dev" ]
    verify_block rb a 0 4
    # Published and mapped: DeleteVolume is refused, the image stays.
    out=$(ctl delete-volume --volume-id "$(vol_id rb)" 2>&1) && { echo "DeleteVolume of a published volume succeeded"; return 1; }
    echo "$out"
    vm_rbd "$cdir" info "$cpool/csi-$DRV_INSTANCE-$key" | head -n 3
    vol_detach rb a
    ctl delete-volume --volume-id "$(vol_id rb)" >/dev/null
    [ "$(mappings "$key")" -eq 0 ]
    expect_rc 2 vm_rbd "$cdir" info "$cpool/csi-$DRV_INSTANCE-$key"
}
step "krbd: one mapping per volume, reused by a restarted engine; a published volume is not deleted; delete unmaps and removes the image" krbd_restart

step "nothing left behind" nothing_left "$cdir" "$cpool"

stop_all() {
    drv_stop a; drv_stop controller; drv_stop target
    ceph_stop "$cdir"
    local d
    for d in ceph-mon ceph-mgr ceph-osd; do
        if pgrep -a -x "$d"; then echo "$d still running" >&2; return 1; fi
    done
}
step "stop every role and the Ceph daemons" stop_all
