#!/bin/bash
# vm-timeout: 1200
# Raw block volumes through the real roles (target on LIO, controller, two node plugins): a volume
# with MULTI_NODE_MULTI_WRITER published to two nodes at once — node b is a second initiator identity
# in the same VM (its own open-iscsi iface with its own iface.initiatorname, `csi-scst node --iface`)
# — each node writes and sees the other's data; unpublishing one node leaves the other working; online
# expansion of a block volume (the node rescans); a block volume on a file pool (LIO fileio).
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"
. "$CSI_SCST_LIB/driver.sh"
. "$CSI_SCST_LIB/e2e.sh"

vm_require_bin csi-scst
vg=e2evg
iface_b=csi-node-b
ini_b=iqn.2026-11.io.csi-scst.vm:node-b
files=$CSI_SCST_WORK/files
blk_caps="--access-type block --access-mode multi-node-multi-writer"

cleanup() {
    set +e
    drv_stop_all
    e2e_force_cleanup
    iscsiadm -m iface -I "$iface_b" -o delete >/dev/null 2>&1
    vgremove -ff -y "$vg" >/dev/null 2>&1
    vm_wipe_disk "$CSI_SCST_DISK1"
}
trap cleanup EXIT

setup() {
    lio_load
    modprobe iscsi_tcp
    pvcreate -q -y "$CSI_SCST_DISK1" >/dev/null
    vgcreate -q "$vg" "$CSI_SCST_DISK1" >/dev/null
    mkdir -p "$files"
    drv_init
}
step "setup: LIO, iscsi_tcp, VG $vg, a file pool directory, TLS material" setup

start_roles() {
    drv_target target lio --pool "name=thick,backend=lvm,vg=$vg" --pool "name=files,backend=file,path=$files" &
    drv_controller &
    drv_node a &
    drv_node b --iface "$iface_b" --initiator-name "$ini_b" &
    drv_wait_jobs
    [ "$(node_id b)" = "vm-b/$ini_b" ]
    iscsiadm -m iface -I "$iface_b" | grep -x "iface.initiatorname = $ini_b"
    [ "$(node_id a)" = "vm-a/$(vm_initiator_name)" ]
}
step "start target (LIO), controller, node a (default iface) and node b (iface $iface_b, its own initiator name)" start_roles

create_shared() {
    # A filesystem mounted read-write on two nodes gets corrupted: refused.
    expect_rc 103 ctl create-volume --name fs-mnmw --fs-type ext4 --access-mode multi-node-multi-writer --size 64Mi --param pool=thick
    vol_create shared "$blk_caps" --size 64Mi --param pool=thick
    ctl validate-capabilities --volume-id "$(vol_id shared)" $blk_caps | jq -c .
    ctl validate-capabilities --volume-id "$(vol_id shared)" $blk_caps | jq -e '.confirmed != null' >/dev/null
}
step "CreateVolume: 64 MiB block, MULTI_NODE_MULTI_WRITER (thick LV); a filesystem with that mode is INVALID_ARGUMENT" create_shared

attach_both() {
    local iqn t
    vol_attach shared a
    vol_attach shared b
    check_staged shared a
    check_staged shared b
    test -b "$(target_path shared a)" && test -b "$(target_path shared b)"
    iqn=$(pub_ctx shared a csi-scst.io/iqn)
    t=$LIO_ROOT/iscsi/$iqn/tpgt_1
    echo "ACLs of $iqn: $(ls "$t/acls" | tr '\n' ' ')"
    test -d "$t/acls/$(vm_initiator_name)" && test -d "$t/acls/$ini_b"
    # Two sessions to the one target, one per iface.
    iscsiadm -m session -P 1 | grep -E 'Target:|Iface Name:|Iface Initiatorname:'
    [ "$(iscsiadm -m session | grep -c " $iqn ")" -eq 2 ]
    iscsiadm -m session -P 1 | grep -A 20 "Target: $iqn" | grep -q "Iface Name: $iface_b"
    # A new thick LV is zeroed: it never shows an earlier volume's data.
    [ "$(dd if="$(target_path shared a)" bs=1M count=64 iflag=direct status=none | tr -d '\0' | wc -c)" -eq 0 ]
}
step "publish + stage + publish on both nodes: one target, two ACLs, two sessions; a zeroed device" attach_both

cross_io() {
    write_block shared a 0 4
    verify_block shared b 0 4
    write_block shared b 8 4
    verify_block shared a 8 4
}
step "node a writes, node b reads it; node b writes, node a reads it (O_DIRECT)" cross_io

detach_b() {
    local iqn
    iqn=$(pub_ctx shared a csi-scst.io/iqn)
    vol_detach shared b
    [ ! -e "$(target_path shared b)" ]
    [ "$(iscsiadm -m session | grep -c " $iqn ")" -eq 1 ]
    test ! -e "$LIO_ROOT/iscsi/$iqn/tpgt_1/acls/$ini_b"
    test -d "$LIO_ROOT/iscsi/$iqn/tpgt_1/acls/$(vm_initiator_name)"
    verify_block shared a 8 4
    write_block shared a 16 4
}
step "node b detaches (unpublish, unstage, ControllerUnpublish): its ACL goes, node a keeps working" detach_b

expand_block() {
    local out dev
    # shellcheck disable=SC2086
    out=$(ctl expand-volume --volume-id "$(vol_id shared)" --size 96Mi $blk_caps)
    echo "ControllerExpandVolume: $(jq -c . <<<"$out")"
    [ "$(jq -r .capacityBytes <<<"$out")" -ge $((96 << 20)) ]
    # shellcheck disable=SC2086
    out=$(nd a node-expand --volume-id "$(vol_id shared)" --volume-path "$(target_path shared a)" --staging-path "$(staging_path shared a)" --size 96Mi $blk_caps)
    echo "NodeExpandVolume: $(jq -c . <<<"$out")"
    dev=$(readlink -f "$(vol_bypath shared a)")
    echo "$dev: $(blockdev --getsize64 "$dev") bytes"
    [ "$(blockdev --getsize64 "$dev")" -eq $((96 << 20)) ]
    [ "$(blockdev --getsize64 "$(target_path shared a)")" -eq $((96 << 20)) ]
    verify_block shared a 0 4
    write_block shared a 90 4
}
step "online expand of the block volume to 96 MiB: the published device grows" expand_block

detach_a() { vol_detach shared a; ctl delete-volume --volume-id "$(vol_id shared)" >/dev/null; }
step "node a detaches; DeleteVolume" detach_a

fileio_block() {
    local bs
    vol_create filevol "--access-type block" --size 32Mi --param pool=files
    vol_attach filevol a
    check_staged filevol a
    bs=$(lio_backstore_dir "csi_${DRV_INSTANCE}_$(vid_key "$(vol_id filevol)")")
    echo "backstore $bs"
    case "$bs" in */fileio_*) ;; *) echo "not a fileio backstore" >&2; return 1 ;; esac
    write_block filevol a 0 4
    verify_block filevol a 0 4
    cmp <(head -c $((4 << 20)) "$files/csi-$DRV_INSTANCE-$(vid_key "$(vol_id filevol)").img") "$E2E/filevol.blk.0"
    # Online expand of a fileio LUN: the file grows, LIO's fd_dev_size follows, the node rescans.
    ctl expand-volume --volume-id "$(vol_id filevol)" --size 48Mi --access-type block | jq -c .
    nd a node-expand --volume-id "$(vol_id filevol)" --volume-path "$(target_path filevol a)" --staging-path "$(staging_path filevol a)" \
        --size 48Mi --access-type block | jq -c .
    [ "$(blockdev --getsize64 "$(target_path filevol a)")" -eq $((48 << 20)) ]
    write_block filevol a 44 4
    verify_block filevol a 0 4
    vol_detach filevol a
    ctl delete-volume --volume-id "$(vol_id filevol)" >/dev/null
    [ -z "$(find "$files" -name 'csi-*' -print -quit)" ]
}
step "a block volume on the file pool (LIO fileio): data lands in the file, online expand; deleted" fileio_block

step "nothing left behind" nothing_left

stop_roles() {
    drv_stop b; drv_stop a; drv_stop controller; drv_stop target
    iscsiadm -m iface -I "$iface_b" -o delete
}
step "stop every role; remove iface $iface_b" stop_roles

teardown() { vgremove -q -y "$vg" >/dev/null; pvremove -q -y "$CSI_SCST_DISK1" >/dev/null; wipefs -a -q "$CSI_SCST_DISK1"; }
step "teardown: VG" teardown
