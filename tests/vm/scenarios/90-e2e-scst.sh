#!/bin/bash
# vm-timeout: 1500
# The SCST slot: the same end-to-end flows on the SCST engine (`csi-scst target --engine scst`), when
# the run was given prebuilt SCST modules and iscsi-scstd for the VM's kernel (nothing in this
# repository builds SCST):
#   CSI_SCST_SCST_MODULES=DIR tests/vm/run-suite.sh OUT     (or tests/vm/run.sh)
# DIR holds scst.ko, scst_vdisk.ko, iscsi-scst.ko (any depth; built for the VM's kernel, see
# summary.json's "kernel") and the iscsi-scstd program. Without it this scenario reports itself
# SKIPPED (the only skip CI allows). With it: the modules are loaded and iscsi-scstd started, then a
# thick ext4 and a thin xfs volume go through their whole life (lib/e2e.sh fs_lifecycle), a
# MULTI_NODE_MULTI_WRITER block volume is used from two initiators (node b through its own iface), an
# initiator that was not published cannot log in, and the SCST configuration is wiped under a live
# session and restored by the engine's reconcile with the data intact. Then SCST is unloaded.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"
. "$CSI_SCST_LIB/driver.sh"
. "$CSI_SCST_LIB/e2e.sh"

mods=${CSI_SCST_SCST_MODULES:-}
[ -n "$mods" ] || vm_skip "no prebuilt SCST modules (set CSI_SCST_SCST_MODULES=DIR with scst.ko, scst_vdisk.ko, iscsi-scst.ko and iscsi-scstd for kernel $(uname -r))"
vm_require_bin csi-scst

vg=e2evg
iface_b=csi-node-b
ini_b=iqn.2026-11.io.csi-scst.vm:node-b
scst_root=/sys/kernel/scst_tgt
blk_caps="--access-type block --access-mode multi-node-multi-writer"

module() { find "$mods" -name "$1" -type f | head -n1; }
scstd_pid() { pgrep -x iscsi-scstd; }
unload_scst() {
    local p
    for p in $(scstd_pid); do kill "$p"; done
    wait_for 30 sh -c '! pgrep -x iscsi-scstd' || for p in $(scstd_pid); do kill -9 "$p"; done
    for m in iscsi_scst scst_vdisk scst; do lsmod | grep -q "^$m " && rmmod "$m"; done
    return 0
}
cleanup() {
    set +e
    drv_stop_all
    for d in $(findmnt -rn -o TARGET | grep "^$DRV/" | sort -r); do umount -l "$d"; done
    iscsiadm -m node -U all >/dev/null 2>&1
    iscsiadm -m node -o delete >/dev/null 2>&1
    iscsiadm -m iface -I "$iface_b" -o delete >/dev/null 2>&1
    # Everything the engine made goes with the modules.
    unload_scst
    vgremove -ff -y "$vg" >/dev/null 2>&1
    vm_wipe_disk "$CSI_SCST_DISK1"; vm_wipe_disk "$CSI_SCST_DISK2"
}
trap cleanup EXIT

load_scst() {
    local m f magic
    for m in scst.ko scst_vdisk.ko iscsi-scst.ko; do
        f=$(module "$m")
        [ -n "$f" ] || { echo "$mods has no $m" >&2; return 1; }
        magic=$(modinfo -F vermagic "$f")
        echo "$f: vermagic $magic"
        case "$magic" in "$(uname -r) "*) ;; *) echo "$m was built for '$magic', this kernel is $(uname -r)" >&2; return 1 ;; esac
    done
    modprobe crc32c 2>/dev/null || true
    insmod "$(module scst.ko)"
    insmod "$(module scst_vdisk.ko)"
    insmod "$(module iscsi-scst.ko)"
    f=$(find "$mods" -name iscsi-scstd -type f | head -n1)
    [ -n "$f" ] || { echo "$mods has no iscsi-scstd" >&2; return 1; }
    install -m 0755 "$f" /usr/local/sbin/iscsi-scstd
    /usr/local/sbin/iscsi-scstd -p 3260 -a 127.0.0.1
    wait_for 30 grep -qx open "$scst_root/targets/iscsi/open_state"
    ls "$scst_root/handlers" "$scst_root/targets"
    modprobe iscsi_tcp
}
step "load the prebuilt SCST modules and start iscsi-scstd" load_scst

setup() {
    pvcreate -q -y "$CSI_SCST_DISK1" "$CSI_SCST_DISK2" >/dev/null
    vgcreate -q "$vg" "$CSI_SCST_DISK1" "$CSI_SCST_DISK2" >/dev/null
    lvcreate -q -y --type thin-pool -n tp -L 1200M "$vg" "$CSI_SCST_DISK2" >/dev/null
    drv_init
}
step "setup: VG $vg (thin pool tp), TLS material" setup

start_target() { drv_target target scst --scst-config-file "$DRV/scst.conf" --reconcile-interval 00:00:10 --pool "name=thick,backend=lvm,vg=$vg" --pool "name=thin,backend=lvm,vg=$vg,thinpool=tp"; }
start_roles() {
    start_target &
    drv_controller --default-pool thin &
    drv_node a &
    drv_node b --iface "$iface_b" --initiator-name "$ini_b" &
    drv_wait_jobs
}
step "start target (SCST), controller, node a and node b (iface $iface_b)" start_roles

E2E_SNAPSHOTS_PIN_SOURCE=1 fs_lifecycle scst-thick-ext4 thick ext4 64 96
E2E_SNAPSHOTS_PIN_SOURCE=0 fs_lifecycle scst-thin-xfs thin xfs 320 384

multi_node() {
    vol_create shared "$blk_caps" --size 64Mi
    vol_attach shared a
    vol_attach shared b
    check_staged shared a
    check_staged shared b
    write_block shared a 0 4
    verify_block shared b 0 4
    write_block shared b 8 4
    verify_block shared a 8 4
    vol_detach shared b
    verify_block shared a 8 4
}
step "MULTI_NODE_MULTI_WRITER block volume on two initiators: each sees the other's writes; node b detaches" multi_node

not_published() {
    local out
    cp "$E2E/shared.a.pub.json" "$E2E/shared.b.pub.json"
    out=$(vol_stage shared b 2>&1) && { echo "node b staged a volume published only to node a"; return 1; }
    echo "node b: $out"
    vol_unstage shared b
    [ "$(iscsiadm -m session | grep -c " $(pub_ctx shared a csi-scst.io/iqn) ")" -eq 1 ]
}
step "an initiator the volume is not published to cannot log in" not_published

wipe() {
    local iqn
    iqn=$(pub_ctx shared a csi-scst.io/iqn)
    # As a restart of SCST would leave it: every target and device gone (the engine is stopped first).
    drv_stop target KILL
    echo 0 > "$scst_root/targets/iscsi/$iqn/enabled" 2>/dev/null || true
    echo "del_target $iqn" > "$scst_root/targets/iscsi/mgmt"
    echo "del_device csi_${DRV_INSTANCE}_$(vid_key "$(vol_id shared)")" > "$scst_root/handlers/vdisk_blockio/mgmt"
    test ! -e "$scst_root/targets/iscsi/$iqn"
    start_target
    wait_for 120 test -d "$scst_root/targets/iscsi/$iqn"
    wait_for 120 sh -c "iscsiadm -m session -P 1 | grep -q 'iSCSI Session State: LOGGED_IN'"
    check_staged shared a
    verify_block shared a 0 4
    verify_block shared a 8 4
    vol_detach shared a
    ctl delete-volume --volume-id "$(vol_id shared)" >/dev/null
}
step "SCST target and device removed under a live session: the restarted engine restores them, data intact" wipe

step "nothing left behind" nothing_left

stop_all() {
    drv_stop b; drv_stop a; drv_stop controller; drv_stop target
    iscsiadm -m iface -I "$iface_b" -o delete
    ls "$scst_root/targets/iscsi" "$scst_root/handlers/vdisk_blockio"
    unload_scst
    vgremove -q -y "$vg" >/dev/null
    pvremove -q -y "$CSI_SCST_DISK1" "$CSI_SCST_DISK2" >/dev/null
    wipefs -a -q "$CSI_SCST_DISK1" "$CSI_SCST_DISK2"
}
step "stop every role, unload SCST, remove the VG" stop_all
