#!/bin/bash
# vm-timeout: 900
# The LIO engine (src/CsiScst.Targets/Lio) on a real kernel, driven through lio-driver
# (tests/CsiScst.LioDriver, AOT-published into $CSI_SCST_BIN by tests/CsiScst.LioDriver/run-vm.sh):
# probe loads the modules; an LV is exported over iblock and a file over fileio; open-iscsi logs in
# over 127.0.0.1 and sees the volume's serial in VPD 0x80; a read-only ACL refuses writes; CHAP and
# mutual CHAP are accepted with the right secrets and refused with wrong ones; removing the
# initiator from the spec closes its session and fails its I/O (fencing); a grown LV and a grown
# file are seen after a rescan; a wiped configfs is restored by reconcile with the data intact
# (logged out, and with a live session that recovers by itself). Everything is torn down at the end.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"

command -v lio-driver >/dev/null || { echo "lio-driver is not in \$CSI_SCST_BIN (run tests/CsiScst.LioDriver/run-vm.sh)" >&2; exit 1; }

disk=${CSI_SCST_DISK1:?no scratch disk}
work=$CSI_SCST_WORK
state=$work/state
vg=liovg
portal=127.0.0.1:3260
ini=$(vm_initiator_name)
drv() { lio-driver --state "$state" "$@"; }

read -r blk_key blk_iqn blk_dev blk_serial < <(drv names vol-blk)
read -r file_key file_iqn file_dev file_serial < <(drv names vol-file)
read -r orphan_key orphan_iqn _ _ < <(drv names vol-orphan)
blk_path=/dev/disk/by-path/ip-$portal-iscsi-$blk_iqn-lun-0
file_path=/dev/disk/by-path/ip-$portal-iscsi-$file_iqn-lun-0
file_img=$work/vol-file.img
tpg() { echo "$LIO_ROOT/iscsi/$1/tpgt_1"; }

cleanup() {
    set +e
    iscsiadm -m node -U all >/dev/null 2>&1
    iscsiadm -m node -o delete >/dev/null 2>&1
    iscsiadm -m discoverydb -o delete >/dev/null 2>&1
    for v in vol-blk vol-file vol-orphan; do drv remove "$v" >/dev/null 2>&1; done
    vm_wipe_disk "$disk"
}
trap cleanup EXIT

# ---- initiator helpers -------------------------------------------------------------------------
node_new() {   # IQN: a node record with manual startup and short timeouts
    iscsiadm -m node -o new -T "$1" -p "$portal" >/dev/null
    iscsiadm -m node -T "$1" -p "$portal" -o update -n node.startup -v manual
    iscsiadm -m node -T "$1" -p "$portal" -o update -n node.session.timeo.replacement_timeout -v 5
    iscsiadm -m node -T "$1" -p "$portal" -o update -n node.conn[0].timeo.login_timeout -v 5
    iscsiadm -m node -T "$1" -p "$portal" -o update -n node.session.initial_login_retry_max -v 1
}
node_auth() {  # IQN METHOD [USER SECRET [USER_IN SECRET_IN]]
    local iqn=$1
    iscsiadm -m node -T "$iqn" -p "$portal" -o update -n node.session.auth.authmethod -v "$2"
    iscsiadm -m node -T "$iqn" -p "$portal" -o update -n node.session.auth.username -v "${3:-}"
    iscsiadm -m node -T "$iqn" -p "$portal" -o update -n node.session.auth.password -v "${4:-}"
    iscsiadm -m node -T "$iqn" -p "$portal" -o update -n node.session.auth.username_in -v "${5:-}"
    iscsiadm -m node -T "$iqn" -p "$portal" -o update -n node.session.auth.password_in -v "${6:-}"
}
login() { iscsiadm -m node -T "$1" -p "$portal" --login; wait_for 60 test -b "$2"; }
logout() { iscsiadm -m node -T "$1" -p "$portal" --logout; wait_for 30 test ! -e "$2"; }
dev_of() { basename "$(readlink -f "$1")"; }
serial_is() {   # BYPATH SERIAL
    local got
    got=$(vpd80_serial "/sys/class/block/$(dev_of "$1")/device/vpd_pg80")
    echo "$(dev_of "$1") VPD 0x80 serial '$got'"
    [ "$got" = "$2" ]
}
session_state() { iscsiadm -m session -P 1 2>/dev/null | sed -n 's/^[[:space:]]*iSCSI Session State: //p' | head -n1; }
# Real configfs text for the unit tests' parsers (copied to tests/CsiScst.Tests/Lio/Fixtures/).
capture() { mkdir -p "$CSI_SCST_RESULTS/captures"; cat "$2" > "$CSI_SCST_RESULTS/captures/$1"; }
size_is() { [ "$(blockdev --getsize64 "$1")" = "$2" ]; }
ro_is() { [ "$(blockdev --getro "$1")" = "$2" ]; }
logged_in() { [ "$(session_state)" = LOGGED_IN ]; }

# ---- steps -------------------------------------------------------------------------------------
probe() {
    drv probe
    lsmod | grep -E '^(target_core_mod|target_core_iblock|target_core_file|iscsi_target_mod) '
    test -d "$LIO_ROOT/iscsi"
    modprobe iscsi_tcp
}

make_lv() {
    pvcreate -q -y "$disk"
    vgcreate -q "$vg" "$disk"
    lvcreate -q -y -n blk -L 64M "$vg"
}

export_block() {
    drv ensure vol-blk --backing "/dev/$vg/blk" --rw "$ini" --portal "$portal"
    local t; t=$(tpg "$blk_iqn")
    grep -H . "$t/enable" "$t"/attrib/{generate_node_acls,demo_mode_write_protect,cache_dynamic_acls,prod_mode_write_protect,demo_mode_discovery,authentication} \
        "$t/acls/$ini/lun_0/write_protect" "$LIO_ROOT"/core/iblock_*/"$blk_dev"/{udev_path,enable} "$LIO_ROOT"/core/iblock_*/"$blk_dev"/wwn/vpd_unit_serial
    [ "$(cat "$t/enable")" = 1 ] && [ "$(cat "$t/attrib/generate_node_acls")" = 0 ] && [ "$(cat "$t/attrib/authentication")" = 0 ]
    [ "$(cat "$t/acls/$ini/lun_0/write_protect")" = 0 ]
    drv list
    ss -ltn | grep -F "$portal"
}

discover() {
    local out
    out=$(iscsiadm -m discovery -t sendtargets -p "$portal")
    echo "$out"
    grep -qxF "$portal,1 $blk_iqn" <<<"$out"
    iscsiadm -m node -T "$blk_iqn" -p "$portal" -o delete || true
    iscsiadm -m discoverydb -t sendtargets -p "$portal" -o delete
}

write_data() {
    dd if=/dev/urandom of="$work/data" bs=1M count=8 status=none
    sha256sum < "$work/data" | tee "$work/data.sha"
    dd if="$work/data" of="$blk_path" bs=1M oflag=direct status=none
    verify_data
}
verify_data() {
    local got
    got=$(dd if="$blk_path" bs=1M count=8 iflag=direct status=none | sha256sum)
    echo "read back: $got"
    [ "$got" = "$(cat "$work/data.sha")" ]
}

sessions_and_stats() {
    drv sessions | tee "$work/sessions"
    grep -qF "$blk_iqn $ini 127.0.0.1" "$work/sessions"
    drv stats | tee "$work/stats"
    local written; written=$(sed -n "s/^$blk_key .*written_bytes=\([0-9]*\).*/\1/p" "$work/stats")
    [ "$written" -ge $((8 << 20)) ]
    cat "$(tpg "$blk_iqn")/acls/$ini/info"
    capture acl-info-session.txt "$(tpg "$blk_iqn")/acls/$ini/info"
    capture iblock-info.txt "$(lio_backstore_dir "$blk_dev")/info"
    capture vpd_unit_serial.txt "$(lio_backstore_dir "$blk_dev")/wwn/vpd_unit_serial"
    local s; for s in in_cmds read_mbytes write_mbytes; do capture "scsi_tgt_port-$s.txt" "$(tpg "$blk_iqn")/lun/lun_0/statistics/scsi_tgt_port/$s"; done
}

read_only() {
    drv ensure vol-blk --backing "/dev/$vg/blk" --ro "$ini" --portal "$portal"
    [ "$(cat "$(tpg "$blk_iqn")/acls/$ini/lun_0/write_protect")" = 1 ]
    iscsiadm -m node -T "$blk_iqn" -p "$portal" -R >/dev/null
    wait_for 30 ro_is "$blk_path" 1 || true
    echo "blockdev --getro: $(blockdev --getro "$blk_path")"
    if dd if=/dev/zero of="$blk_path" bs=4k count=1 seek=4096 oflag=direct status=none 2>"$work/ro.err"; then
        echo "a write on the read-only LUN succeeded" >&2
        return 1
    fi
    echo "write refused: $(cat "$work/ro.err")"
    verify_data
}

read_write_again() {
    drv ensure vol-blk --backing "/dev/$vg/blk" --rw "$ini" --portal "$portal"
    iscsiadm -m node -T "$blk_iqn" -p "$portal" -R >/dev/null
    wait_for 30 ro_is "$blk_path" 0
    dd if=/dev/zero of="$blk_path" bs=4k count=1 seek=4096 oflag=direct status=none
}

chap_on() {
    drv ensure vol-blk --backing "/dev/$vg/blk" --rw "$ini" --portal "$portal" \
        --chap user-vm:secret-in-123456 --mutual target-vm:secret-out-654321
    local t; t=$(tpg "$blk_iqn")
    [ "$(cat "$t/attrib/authentication")" = 1 ]
    [ "$(cat "$t/acls/$ini/auth/userid")" = user-vm ]
    [ "$(cat "$t/acls/$ini/auth/userid_mutual")" = target-vm ]
    capture acl-info-no-session.txt "$t/acls/$ini/info"
    drv list | grep -F "$blk_key" | grep -q 'chap=True'
}
chap_refused_without_credentials() {
    node_auth "$blk_iqn" None
    expect_rc 24 iscsiadm -m node -T "$blk_iqn" -p "$portal" --login
}
chap_refused_with_wrong_secret() {
    node_auth "$blk_iqn" CHAP user-vm wrong-secret-0000
    expect_rc 24 iscsiadm -m node -T "$blk_iqn" -p "$portal" --login
}
mutual_refused_with_wrong_target_secret() {
    node_auth "$blk_iqn" CHAP user-vm secret-in-123456 target-vm wrong-secret-0000
    local rc=0
    iscsiadm -m node -T "$blk_iqn" -p "$portal" --login || rc=$?
    echo "login rc=$rc"
    [ "$rc" -ne 0 ]
    ! iscsiadm -m session 2>/dev/null | grep -qF "$blk_iqn"
}
chap_accepted() {
    node_auth "$blk_iqn" CHAP user-vm secret-in-123456 target-vm secret-out-654321
    login "$blk_iqn" "$blk_path"
    serial_is "$blk_path" "$blk_serial"
    verify_data
    logout "$blk_iqn" "$blk_path"
}
chap_off() {
    drv ensure vol-blk --backing "/dev/$vg/blk" --rw "$ini" --portal "$portal"
    [ "$(cat "$(tpg "$blk_iqn")/attrib/authentication")" = 0 ]
    node_auth "$blk_iqn" None
    login "$blk_iqn" "$blk_path"
}

fence() {
    # A writer keeps writing (past the checked data) until its I/O fails.
    ( while dd if=/dev/zero of="$blk_path" bs=64k count=16 seek=256 oflag=direct status=none 2>/dev/null; do :; done
      touch "$work/writer.stopped" ) &
    sleep 2
    [ ! -e "$work/writer.stopped" ]
    drv ensure vol-blk --backing "/dev/$vg/blk" --portal "$portal"
    test ! -e "$(tpg "$blk_iqn")/acls/$ini"
    [ -z "$(drv sessions)" ]
    wait_for 90 test -e "$work/writer.stopped"
    echo "writer stopped after the fence; initiator session state: $(session_state)"
    [ "$(session_state)" != LOGGED_IN ]
    # The initiator keeps trying to reconnect; LIO refuses it (no ACL), so no session comes back.
    sleep 6
    [ -z "$(drv sessions)" ]
    dmesg | grep -iE 'not authorized|Unable to locate Target|iSCSI Initiator Node' | tail -n 3 || true
    logout "$blk_iqn" "$blk_path"
}

resize_block() {
    drv ensure vol-blk --backing "/dev/$vg/blk" --rw "$ini" --portal "$portal"
    login "$blk_iqn" "$blk_path"
    size_is "$blk_path" $((64 << 20))
    lvextend -q -L 96M "$vg/blk"
    drv resync vol-blk
    iscsiadm -m node -T "$blk_iqn" -p "$portal" -R >/dev/null
    wait_for 30 size_is "$blk_path" $((96 << 20))
    echo "LUN size after rescan: $(blockdev --getsize64 "$blk_path")"
    verify_data
}

export_file() {
    truncate -s 32M "$file_img"
    drv ensure vol-file --file --backing "$file_img" --rw "$ini" --portal "$portal"
    grep -H . "$LIO_ROOT"/core/fileio_*/"$file_dev"/info
    capture fileio-info.txt "$(lio_backstore_dir "$file_dev")/info"
    node_new "$file_iqn"
    login "$file_iqn" "$file_path"
    serial_is "$file_path" "$file_serial"
    size_is "$file_path" $((32 << 20))
    dd if="$work/data" of="$file_path" bs=1M oflag=direct status=none
}
resize_file() {
    truncate -s 48M "$file_img"
    drv resync vol-file
    grep -H . "$LIO_ROOT"/core/fileio_*/"$file_dev"/info
    iscsiadm -m node -T "$file_iqn" -p "$portal" -R >/dev/null
    wait_for 30 size_is "$file_path" $((48 << 20))
    echo "LUN size after rescan: $(blockdev --getsize64 "$file_path")"
    drv list | grep -F "$file_key" | grep -qF "size=$((48 << 20))"
    logout "$file_iqn" "$file_path"
}

wipe_and_reconcile() {
    logout "$blk_iqn" "$blk_path"
    # An export nothing wants any more: reconcile removes it.
    truncate -s 8M "$work/orphan.img"
    drv ensure vol-orphan --backing "$work/orphan.img" --file --portal "$portal" >/dev/null
    rm "$state/vol-orphan.spec"
    lio_clear_all
    rmdir "$LIO_ROOT/iscsi"
    echo "after the wipe:"; lio_list; ls "$LIO_ROOT"
    [ -z "$(lio_list)" ]
    # The orphan comes back as another tool might restore it.
    mkdir -p "$(tpg "$orphan_iqn")"
    drv reconcile | tee "$work/reconcile"
    grep -qx 'checked=2 repaired=2 orphans=1 errors=0' "$work/reconcile"
    drv reconcile | grep -x 'checked=2 repaired=0 orphans=0 errors=0'
    test ! -e "$LIO_ROOT/iscsi/$orphan_iqn"
    drv list
    login "$blk_iqn" "$blk_path"
    serial_is "$blk_path" "$blk_serial"
    verify_data
    size_is "$blk_path" $((96 << 20))
}

wipe_live_session() {
    lio_clear_all
    [ -z "$(lio_list)" ]
    drv reconcile | grep -x 'checked=2 repaired=2 orphans=0 errors=0'
    # The initiator reconnects by itself to the restored target (same IQN, ACL, serial).
    wait_for 120 logged_in
    drv sessions | grep -qF "$blk_iqn $ini"
    serial_is "$blk_path" "$blk_serial"
    verify_data
}

teardown() {
    logout "$blk_iqn" "$blk_path"
    iscsiadm -m node -o delete
    drv remove vol-blk
    drv remove vol-file
    drv list
    [ -z "$(lio_list)" ]
    lvremove -q -y "$vg/blk"
    vgremove -q -y "$vg"
    pvremove -q -y "$disk"
    wipefs -a -q "$disk"
}

step "probe loads LIO and creates the iscsi fabric group" probe
step "LVM: VG and a 64 MiB LV" make_lv
step "export the LV (iblock, serial, ACL, demo mode off, portal)" export_block
step "SendTargets discovery shows the target to its initiator" discover
step "node record (manual startup, short timeouts)" node_new "$blk_iqn"
step "login" login "$blk_iqn" "$blk_path"
step "VPD 0x80 holds the volume serial" serial_is "$blk_path" "$blk_serial"
step "write 8 MiB (O_DIRECT) and read it back" write_data
step "sessions from the ACL info, stats from LUN statistics" sessions_and_stats
step "read-only ACL: write_protect=1, writes refused" read_only
step "read-write again" read_write_again
step "logout" logout "$blk_iqn" "$blk_path"
step "CHAP + mutual CHAP on the ACL, authentication=1" chap_on
step "CHAP: login without credentials refused (24)" chap_refused_without_credentials
step "CHAP: login with a wrong secret refused (24)" chap_refused_with_wrong_secret
step "mutual CHAP: a wrong target secret is refused" mutual_refused_with_wrong_target_secret
step "CHAP: right credentials accepted, serial and data intact" chap_accepted
step "CHAP off: login without credentials" chap_off
step "fencing: removing the initiator closes its session and fails its I/O" fence
step "iblock resize: lvextend, resync, rescan" resize_block
step "fileio export of a file, login, serial" export_file
step "fileio resize: grow the file, resync (fd_dev_size), rescan" resize_file
step "wipe configfs, reconcile restores the exports (orphan removed), data intact" wipe_and_reconcile
step "wipe under a live session, reconcile, the session recovers" wipe_live_session
step "teardown: logout, remove both exports, LVM" teardown
