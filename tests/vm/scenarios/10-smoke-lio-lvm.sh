#!/bin/bash
# vm-timeout: 600
# Smoke test of the kernel path, shell only: LVM (thick LV, thin pool + thin LV) on the first
# scratch disk, exported through raw LIO configfs, logged in with open-iscsi over 127.0.0.1,
# checked for its VPD 0x80 serial, formatted, written, re-logged-in and verified; then torn down
# in reverse so nothing is left.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"

disk=${CSI_SCST_DISK1:?no scratch disk}
vg=smokevg
lv=thick1
iqn=iqn.2026-11.io.csi-scst:smoke.lvm
bs_name=smoke_lvm
serial=CS0123456789abcdef
portal=127.0.0.1:3260
ini=$(vm_initiator_name)
bypath=/dev/disk/by-path/ip-$portal-iscsi-$iqn-lun-0
mnt=$CSI_SCST_WORK/mnt

cleanup() {
    set +e
    mountpoint -q "$mnt" && umount "$mnt"
    iscsiadm -m node -T "$iqn" -p "$portal" --logout >/dev/null 2>&1
    iscsiadm -m node -T "$iqn" -p "$portal" -o delete >/dev/null 2>&1
    iscsiadm -m discoverydb -t sendtargets -p "$portal" -o delete >/dev/null 2>&1
    lio_target_delete "$iqn" 2>/dev/null
    lio_backstore_delete "$bs_name" 2>/dev/null
    vm_wipe_disk "$disk"
}
trap cleanup EXIT

load_lio() { lio_load; lsmod | grep -E '^(target_core|iscsi_target)'; }
load_iscsi_tcp() { modprobe iscsi_tcp; lsmod | grep -E '^(iscsi_tcp|libiscsi)'; }

make_lvm() {
    pvcreate -y "$disk"
    vgcreate "$vg" "$disk"
    lvcreate -y -n "$lv" -L 128M "$vg"
    lvcreate -y --type thin-pool -n pool -L 256M "$vg"
    lvcreate -y --type thin -n thin1 -V 512M --thinpool pool "$vg"
    lvs -o lv_name,lv_attr,lv_size,pool_lv,data_percent --units m "$vg"
}

export_lio() {
    local bs
    bs=$(lio_backstore_block "$bs_name" "/dev/$vg/$lv" "$serial")
    lio_target "$iqn" "$bs" "$ini" "$portal"
    echo "backstore $bs"
    local tpg="$LIO_ROOT/iscsi/$iqn/tpgt_1"
    echo "tpgt_1: enable=$(cat "$tpg/enable") authentication=$(cat "$tpg/attrib/authentication")"
    echo "lun/lun_0 -> $(readlink "$tpg/lun/lun_0/lun0")"
    echo "acls: $(ls "$tpg/acls")  np: $(ls "$tpg/np")"
    ss -ltn | grep ':3260'
}

discover() {
    local outp
    outp=$(iscsiadm -m discovery -t sendtargets -p "$portal")
    echo "$outp"
    grep -qx "$portal,1 $iqn" <<<"$outp"
    iscsiadm -m node -T "$iqn" -p "$portal" -o update -n node.startup -v manual
    iscsiadm -m node -T "$iqn" -p "$portal" | grep -E '^node.(startup|session.auth.authmethod) '
}

login() {
    iscsiadm -m node -T "$iqn" -p "$portal" --login
    wait_for 60 test -b "$bypath"
    iscsiadm -m session
    ls -l "$bypath"
}

check_serial() {
    local dev got
    dev=$(basename "$(readlink -f "$bypath")")
    od -A x -t x1z "/sys/class/block/$dev/device/vpd_pg80"
    got=$(vpd80_serial "/sys/class/block/$dev/device/vpd_pg80")
    echo "device $dev serial '$got'"
    [ "$got" = "$serial" ]
}

mkfs_mount_write() {
    mkfs.ext4 -q -F "$bypath"
    mkdir -p "$mnt"
    mount "$bypath" "$mnt"
    dd if=/dev/urandom of="$mnt/data" bs=1M count=16 status=none
    (cd "$mnt" && sha256sum data) > "$CSI_SCST_WORK/data.sha256"
    cat "$CSI_SCST_WORK/data.sha256"
    umount "$mnt"
}

logout() {
    iscsiadm -m node -T "$iqn" -p "$portal" --logout
    wait_for 30 test ! -e "$bypath"
}

mount_verify() {
    mount "$bypath" "$mnt"
    (cd "$mnt" && sha256sum -c "$CSI_SCST_WORK/data.sha256")
    umount "$mnt"
}

forget_records() {
    iscsiadm -m node -T "$iqn" -p "$portal" -o delete
    iscsiadm -m discoverydb -t sendtargets -p "$portal" -o delete
}

unexport_lio() {
    lio_target_delete "$iqn"
    lio_backstore_delete "$bs_name"
    lio_list
}

remove_lvm() {
    lvremove -y "$vg/thin1" "$vg/pool" "$vg/$lv"
    vgremove -y "$vg"
    pvremove -y "$disk"
    wipefs -a "$disk"
}

step "load LIO modules" load_lio
step "load iscsi_tcp" load_iscsi_tcp
step "iscsid active" systemctl is-active iscsid.service
step "LVM: VG, thick LV, thin pool, thin LV" make_lvm
step "LIO: export $vg/$lv (iblock, serial, ACL, portal)" export_lio
step "iscsiadm discovery + node record (startup=manual)" discover
step "iscsiadm login + by-path link" login
step "VPD 0x80 holds the serial" check_serial
step "mkfs.ext4 + mount + write 16 MiB + umount" mkfs_mount_write
step "logout" logout
step "login again" login
step "VPD 0x80 still holds the serial" check_serial
step "mount + verify checksum + umount" mount_verify
step "logout (final)" logout
step "delete node and discovery records" forget_records
step "LIO teardown" unexport_lio
step "LVM teardown" remove_lvm
