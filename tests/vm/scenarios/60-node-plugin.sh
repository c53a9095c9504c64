#!/bin/bash
# vm-timeout: 1500
# The node plugin with the real kernel initiator: `csi-scst node` driven by `csi-scst client`, against
# LIO targets on LVM laid out as the target engine lays them out (one target per volume, IQN
# <prefix>:<instance>.<key>, the volume's serial CS<key> in VPD 0x80, an ACL for this node's
# initiator). Covers NodeStageVolume (records, login, serial check, format, mount) and its
# idempotency, publish, stats and a real volume condition, online expansion, unstage (logout, node
# records, SCSI disks), a serial mismatch, never formatting existing data, block volumes, CHAP, XFS
# copies (nouuid), dm-multipath, the start-up cleanup of orphaned sessions, restart safety, and a
# second node on the same machine through an open-iscsi iface.
#
# Needs the csi-scst binary: CSI_SCST_BIN=<dir with csi-scst> tests/vm/run.sh --only 60-node-plugin
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"

if [ ! -x "${CSI_SCST_BIN:-}/csi-scst" ]; then
    echo "FAIL this scenario needs the csi-scst binary (run.sh with CSI_SCST_BIN=<dir holding csi-scst>)"
    exit 1
fi

disk=${CSI_SCST_DISK1:?no scratch disk}
vg=nodevg
inst=csi
prefix=iqn.2026-11.io.csi-scst:$inst
portal=127.0.0.1:3260
portal2=127.0.0.2:3260
ini=$(vm_initiator_name)
ini_b=iqn.2026-11.io.csi-scst.vm:node-b
iface_b=csi-node-b
work=$CSI_SCST_WORK
sock=$work/node.sock
sock_b=$work/node-b.sock
kubelet=$work/kubelet
metrics_port=9811
# One key per case (16 hex digits, as docs/design.md derives them).
k_fs=a000000000000001 k_bad=a000000000000002 k_xfs=a000000000000003 k_blk=a000000000000004
k_chap=a000000000000005 k_src=a000000000000006 k_copy=a000000000000007 k_mp=a000000000000008
k_orphan=a000000000000009 k_b=a00000000000000a k_ro=a00000000000000b
foreign=iqn.2026-11.io.csi-scst:other.a0000000000000ff
chap_user=csi-node-vm chap_pass=node-chap-secret-1234
all_keys="$k_fs $k_bad $k_xfs $k_blk $k_chap $k_src $k_copy $k_mp $k_orphan $k_b $k_ro"

volid() { echo "v1:$inst:vm:lvm:$vg:$1"; }
staging() { echo "$kubelet/plugins/kubernetes.io/csi/csi-scst.io/$1/globalmount"; }
target() { echo "$kubelet/pods/pod-$1/volumes/kubernetes.io~csi/pv/mount"; }
bypath() { echo "/dev/disk/by-path/ip-$portal-iscsi-$prefix.$1-lun-0"; }
client() { csi-scst client --endpoint "unix://$sock" --timeout 00:03:00 "$@"; }
client_b() { csi-scst client --endpoint "unix://$sock_b" --timeout 00:03:00 "$@"; }
ctx() {   # the publish and volume context ControllerPublishVolume/CreateVolume would give
    echo --publish-context "csi-scst.io/portals=${2:-$portal}" --publish-context "csi-scst.io/iqn=$prefix.$1" \
        --publish-context "csi-scst.io/lun=0" --volume-context "csi-scst.io/serial=CS$1"
}
# shellcheck disable=SC2046
stage() { local k=$1; shift; mkdir -p "$(staging "$k")"; client stage --volume-id "$(volid "$k")" --staging-path "$(staging "$k")" $(ctx "$k") "$@"; }
# shellcheck disable=SC2046
stage_portals() { local k=$1 p=$2; shift 2; mkdir -p "$(staging "$k")"; client stage --volume-id "$(volid "$k")" --staging-path "$(staging "$k")" $(ctx "$k" "$p") "$@"; }
unstage() { client unstage --volume-id "$(volid "$1")" --staging-path "$(staging "$1")"; }
publish() { mkdir -p "$(dirname "$(target "$1")")"; client node-publish --volume-id "$(volid "$1")" --staging-path "$(staging "$1")" --target-path "$(target "$1")" "${@:2}"; }
unpublish() { client node-unpublish --volume-id "$(volid "$1")" --target-path "$(target "$1")"; }
has_session() { iscsiadm -m session 2>/dev/null | grep -q " $1 "; }
has_session_iqn() { iscsiadm -m session 2>/dev/null | awk '{print $4}' | grep -qx "$1"; }
no_record() { expect_rc 21 iscsiadm -m node -T "$1"; }
not() { if "$@"; then echo "unexpectedly true: $*" >&2; return 1; fi; }   # "! cmd" would not stop a set -e step
metrics() { exec 3<>"/dev/tcp/127.0.0.1/$1"; printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$1" >&3; cat <&3; exec 3<&-; }

start_node() {   # start_node NAME SOCKET METRICS_PORT [extra flags]
    local name=$1 socket=$2 port=$3; shift 3
    rm -f "$socket"
    csi-scst node --endpoint "unix://$socket" --node-id "vm-$name" --metrics-address "127.0.0.1:$port" \
        --log-level Debug --device-timeout 00:01:00 "$@" >> "$CSI_SCST_RESULTS/$name.log" 2>&1 &
    echo $! > "$work/$name.pid"
    wait_for 90 csi-scst client --endpoint "unix://$socket" node-info
    echo "node $name: pid $(cat "$work/$name.pid")"
}
stop_node() {   # stop_node NAME [SIGNAL]
    local pid
    pid=$(cat "$work/$1.pid" 2>/dev/null) || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    wait_for 30 sh -c "! kill -0 $pid"
    rm -f "$work/$1.pid"
}

cleanup() {
    set +e
    stop_node a KILL
    stop_node b KILL
    for d in $(findmnt -rn -o TARGET | grep "^$kubelet" | sort -r); do umount "$d"; done
    iscsiadm -m node -U all >/dev/null 2>&1
    iscsiadm -m node -o delete >/dev/null 2>&1
    iscsiadm -m iface -I "$iface_b" -o delete >/dev/null 2>&1
    multipath -F >/dev/null 2>&1
    for k in $all_keys; do lio_target_delete "$prefix.$k"; lio_backstore_delete "csi_${inst}_$k"; done
    lio_target_delete "$foreign"; lio_backstore_delete "csi_other_ff"
    [ -f "$work/multipath.conf.orig" ] && cp "$work/multipath.conf.orig" /etc/multipath.conf
    [ -f "$work/multipath.conf.orig" ] || rm -f /etc/multipath.conf
    systemctl restart multipathd >/dev/null 2>&1
    vgremove -ff -y "$vg" >/dev/null 2>&1
    vm_wipe_disk "$disk"
}
trap cleanup EXIT

# volume KEY SIZE [ACL_INITIATOR] [CHAP_USER CHAP_PASS]: thin LV + LIO target as the engine makes them.
volume() {
    local k=$1 size=$2 acl=${3:-$ini} user=${4:-} pass=${5:-} bs
    lvcreate -q -y --type thin -n "csi-$inst-$k" -V "$size" --thinpool pool "$vg" >/dev/null
    bs=$(lio_backstore_block "csi_${inst}_$k" "/dev/$vg/csi-$inst-$k" "CS$k")
    lio_target "$prefix.$k" "$bs" "$acl" "$portal" "$user" "$pass"
}

setup() {
    lio_load
    modprobe iscsi_tcp
    modprobe dm_multipath
    pvcreate -q -y "$disk" >/dev/null
    vgcreate -q "$vg" "$disk" >/dev/null
    lvcreate -q -y --type thin-pool -n pool -L 1800M "$vg" >/dev/null
    volume "$k_fs" 64M
    # The target reports a serial that is not the volume's: a stale LUN or a reused one.
    lvcreate -q -y --type thin -n "csi-$inst-$k_bad" -V 64M --thinpool pool "$vg" >/dev/null
    lio_target "$prefix.$k_bad" "$(lio_backstore_block "csi_${inst}_$k_bad" "/dev/$vg/csi-$inst-$k_bad" "CSffffffffffffffff")" "$ini" "$portal"
    # Already holds XFS with data: must be mounted as it is, never formatted.
    lvcreate -q -y --type thin -n "csi-$inst-$k_xfs" -V 320M --thinpool pool "$vg" >/dev/null
    mkfs.xfs -q "/dev/$vg/csi-$inst-$k_xfs"
    mkdir -p "$work/m" && mount "/dev/$vg/csi-$inst-$k_xfs" "$work/m" && echo precious > "$work/m/data" && umount "$work/m"
    lio_target "$prefix.$k_xfs" "$(lio_backstore_block "csi_${inst}_$k_xfs" "/dev/$vg/csi-$inst-$k_xfs" "CS$k_xfs")" "$ini" "$portal"
    volume "$k_blk" 64M
    volume "$k_chap" 64M "$ini" "$chap_user" "$chap_pass"
    # A source XFS volume and a copy of it (thin snapshot: the same XFS UUID), as a snapshot restore makes.
    lvcreate -q -y --type thin -n "csi-$inst-$k_src" -V 320M --thinpool pool "$vg" >/dev/null
    mkfs.xfs -q "/dev/$vg/csi-$inst-$k_src"
    lvcreate -q -y -s -n "csi-$inst-$k_copy" "$vg/csi-$inst-$k_src" >/dev/null
    lvchange -q -ay -K "$vg/csi-$inst-$k_copy"
    lio_target "$prefix.$k_src" "$(lio_backstore_block "csi_${inst}_$k_src" "/dev/$vg/csi-$inst-$k_src" "CS$k_src")" "$ini" "$portal"
    lio_target "$prefix.$k_copy" "$(lio_backstore_block "csi_${inst}_$k_copy" "/dev/$vg/csi-$inst-$k_copy" "CS$k_copy")" "$ini" "$portal"
    # Two portals: dm-multipath.
    volume "$k_mp" 64M
    mkdir "$LIO_ROOT/iscsi/$prefix.$k_mp/tpgt_1/np/$portal2"
    volume "$k_orphan" 64M
    volume "$k_b" 64M "$ini_b"
    volume "$k_ro" 64M
    # Another installation's target (instance "other"): the cleanup must never touch it.
    lvcreate -q -y --type thin -n other -V 64M --thinpool pool "$vg" >/dev/null
    lio_target "$foreign" "$(lio_backstore_block csi_other_ff "/dev/$vg/other" CSa0000000000000ff)" "$ini" "$portal"
    lio_list
}
step "setup: LVM thin pool and LIO targets laid out as the engine makes them" setup

start_a() { start_node a "$sock" "$metrics_port"; }
step "start csi-scst node" start_a

node_info() {
    local id
    id=$(client node-info -o id)
    echo "node id: $id"
    [ "$id" = "vm-a/$ini" ]
    client node-capabilities | jq -c '[.capabilities[].rpc.type]'
}
step "NodeGetInfo: node name + the initiator name from /etc/iscsi/initiatorname.iscsi" node_info

stage_fs() {
    stage "$k_fs" --fs-type ext4
    findmnt -n -o SOURCE,FSTYPE,OPTIONS --mountpoint "$(staging "$k_fs")"
    findmnt -n -o FSTYPE --mountpoint "$(staging "$k_fs")" | grep -qx ext4
    local dev rec
    dev=$(readlink -f "$(bypath "$k_fs")")
    [ "$(findmnt -n -o SOURCE --mountpoint "$(staging "$k_fs")")" = "$dev" ]
    echo "serial of $dev: $(vpd80_serial "/sys/class/block/${dev#/dev/}/device/vpd_pg80")"
    rec=$(iscsiadm -m node -T "$prefix.$k_fs" -p "$portal" -I default)
    grep -E '^node.(startup|session.timeo.replacement_timeout|conn\[0\].timeo.(login_timeout|noop_out_interval|noop_out_timeout)|session.initial_login_retry_max|session.auth.authmethod) ' <<<"$rec"
    grep -qx 'node.startup = manual' <<<"$rec"
    grep -qx 'node.session.timeo.replacement_timeout = 120' <<<"$rec"
    grep -qx 'node.session.initial_login_retry_max = 2' <<<"$rec"
    has_session_iqn "$prefix.$k_fs"
}
step "NodeStageVolume ext4: record, login, serial check, mkfs on a blank device, mount" stage_fs

stage_again() {
    stage "$k_fs" --fs-type ext4
    expect_rc 106 stage "$k_fs" --fs-type xfs
    expect_rc 106 stage "$k_fs" --access-type block
    [ "$(iscsiadm -m session | grep -c " $prefix.$k_fs ")" -eq 1 ]
}
step "NodeStageVolume again: OK; with another fs type or as block: ALREADY_EXISTS" stage_again

publish_fs() {
    publish "$k_fs" --fs-type ext4
    publish "$k_fs" --fs-type ext4
    echo hello > "$(target "$k_fs")/file"
    [ "$(cat "$(staging "$k_fs")/file")" = hello ]
    expect_rc 106 publish "$k_fs" --fs-type ext4 --readonly
    mkdir -p "$kubelet/pods/pod-ro/volumes/kubernetes.io~csi/pv"
    client node-publish --volume-id "$(volid "$k_fs")" --staging-path "$(staging "$k_fs")" \
        --target-path "$kubelet/pods/pod-ro/volumes/kubernetes.io~csi/pv/mount" --fs-type ext4 --readonly
    findmnt -n -o OPTIONS --mountpoint "$kubelet/pods/pod-ro/volumes/kubernetes.io~csi/pv/mount" | grep -q '^ro,'
    client node-unpublish --volume-id "$(volid "$k_fs")" --target-path "$kubelet/pods/pod-ro/volumes/kubernetes.io~csi/pv/mount"
    [ ! -e "$kubelet/pods/pod-ro/volumes/kubernetes.io~csi/pv/mount" ]
}
step "NodePublishVolume: bind mount (again: OK), read-only bind, incompatible: ALREADY_EXISTS" publish_fs

stats_healthy() {
    local out
    out=$(client stats --volume-id "$(volid "$k_fs")" --volume-path "$(target "$k_fs")")
    echo "$out" | jq -c .
    [ "$(jq -r '.volumeCondition.abnormal // false' <<<"$out")" = false ]
    [ "$(jq -r '.usage[] | select(.unit == "BYTES") | .total' <<<"$out")" -gt 50000000 ]
    [ "$(jq -r '.usage[] | select(.unit == "INODES") | .total' <<<"$out")" -gt 1000 ]
}
step "NodeGetVolumeStats: usage, healthy condition" stats_healthy

condition_session_down() {
    local tpg=$LIO_ROOT/iscsi/$prefix.$k_fs/tpgt_1 out
    echo 0 > "$tpg/enable"
    wait_for 60 sh -c "csi-scst client --endpoint unix://$sock stats --volume-id $(volid "$k_fs") --volume-path $(target "$k_fs") | jq -e '.volumeCondition.abnormal == true'"
    out=$(client stats --volume-id "$(volid "$k_fs")" --volume-path "$(target "$k_fs")")
    jq -r .volumeCondition.message <<<"$out"
    jq -r .volumeCondition.message <<<"$out" | grep -q 'iSCSI session'
    echo 1 > "$tpg/enable"
    wait_for 90 sh -c "csi-scst client --endpoint unix://$sock stats --volume-id $(volid "$k_fs") --volume-path $(target "$k_fs") | jq -e '(.volumeCondition.abnormal // false) == false'"
    [ "$(cat "$(target "$k_fs")/file")" = hello ]
}
step "VOLUME_CONDITION: abnormal while the target is away (session FAILED), normal again after it returns" condition_session_down


unstage_busy() {
    local out
    out=$(unstage "$k_fs" 2>&1) && { echo "unstage of a published volume succeeded: $out"; return 1; }
    echo "$out"
    grep -q FailedPrecondition <<<"$out"
    grep -q "$(target "$k_fs")" <<<"$out"
    mountpoint -q "$(staging "$k_fs")"
}
step "NodeUnstageVolume while published: FAILED_PRECONDITION naming the target path" unstage_busy

expand_fs() {
    local out
    lvextend -q -L 128M "$vg/csi-$inst-$k_fs" >/dev/null
    out=$(client node-expand --volume-id "$(volid "$k_fs")" --volume-path "$(target "$k_fs")" --staging-path "$(staging "$k_fs")" --size 128Mi)
    echo "$out"
    [ "$(jq -r .capacityBytes <<<"$out")" = 134217728 ]
    df -B1 --output=size "$(target "$k_fs")" | tail -n1
    [ "$(df -B1 --output=size "$(target "$k_fs")" | tail -n1)" -gt 120000000 ]
    [ "$(cat "$(target "$k_fs")/file")" = hello ]
}
step "NodeExpandVolume: rescan, resize2fs online, new capacity" expand_fs

teardown_fs() {
    local dev
    dev=$(readlink -f "$(bypath "$k_fs")")
    unpublish "$k_fs"
    unpublish "$k_fs"
    [ ! -e "$(target "$k_fs")" ]
    unstage "$k_fs"
    unstage "$k_fs"
    not mountpoint -q "$(staging "$k_fs")"
    not has_session_iqn "$prefix.$k_fs"
    no_record "$prefix.$k_fs"
    [ ! -e "$(bypath "$k_fs")" ]
    [ ! -e "/sys/class/block/${dev#/dev/}" ]
}
step "NodeUnpublishVolume + NodeUnstageVolume (twice each): no mount, session, record or disk left" teardown_fs

serial_mismatch() {
    local out
    out=$(stage "$k_bad" --fs-type ext4 2>&1) && { echo "stage succeeded: $out"; return 1; }
    echo "$out"
    grep -q Internal <<<"$out"
    grep -q "CSffffffffffffffff" <<<"$out"
    grep -q "CS$k_bad" <<<"$out"
    expect_rc 2 blkid -p "/dev/$vg/csi-$inst-$k_bad"   # never formatted
    not mountpoint -q "$(staging "$k_bad")"
    unstage "$k_bad"
    not has_session_iqn "$prefix.$k_bad"
    no_record "$prefix.$k_bad"
}
step "serial mismatch: refused before touching the device (both serials named), nothing formatted" serial_mismatch

never_format() {
    local out
    out=$(stage "$k_xfs" --fs-type ext4 2>&1) && { echo "stage succeeded: $out"; return 1; }
    echo "$out"
    grep -q FailedPrecondition <<<"$out"
    stage "$k_xfs"
    findmnt -n -o FSTYPE --mountpoint "$(staging "$k_xfs")" | grep -qx xfs
    [ "$(cat "$(staging "$k_xfs")/data")" = precious ]
    unstage "$k_xfs"
    not has_session_iqn "$prefix.$k_xfs"
}
step "existing XFS: another fs type refused, no fs type mounts it as it is with its data" never_format

block_volume() {
    local file
    stage "$k_blk" --access-type block
    test -b "$(staging "$k_blk")/device"
    mkdir -p "$(dirname "$(target "$k_blk")")"
    publish "$k_blk" --access-type block
    file=$(target "$k_blk")
    test -b "$file"
    head -c 1048576 /dev/urandom > "$work/payload"
    dd if="$work/payload" of="$file" bs=1M count=1 oflag=direct status=none
    cmp "$work/payload" <(dd if="/dev/$vg/csi-$inst-$k_blk" bs=1M count=1 iflag=direct status=none)
    client stats --volume-id "$(volid "$k_blk")" --volume-path "$file" | jq -e '.usage[0].total == "67108864"'
    # The disk offline (no filesystem on it to hurt): abnormal, then normal again.
    local disk out
    disk=$(basename "$(readlink -f "$(bypath "$k_blk")")")
    echo offline > "/sys/class/block/$disk/device/state"
    out=$(client stats --volume-id "$(volid "$k_blk")" --volume-path "$file")
    echo running > "/sys/class/block/$disk/device/state"
    jq -r .volumeCondition.message <<<"$out"
    jq -e '.volumeCondition.abnormal == true' <<<"$out"
    jq -r .volumeCondition.message <<<"$out" | grep -q "SCSI disk $disk is offline"
    client stats --volume-id "$(volid "$k_blk")" --volume-path "$file" | jq -e '(.volumeCondition.abnormal // false) == false'
    expect_rc 109 unstage "$k_blk"
    unpublish "$k_blk"
    [ ! -e "$file" ]
    unstage "$k_blk"
    [ ! -e "$(staging "$k_blk")/device" ]
    not has_session_iqn "$prefix.$k_blk"
}
step "block volume: staged device file, published file, data lands on the LV, offline disk is abnormal" block_volume

read_only_mode() {
    local out disk
    stage "$k_ro" --fs-type ext4 --mount-flag errors=remount-ro
    publish "$k_ro" --fs-type ext4
    # A real ext4 error (the kernel's own test hook): the kernel switches the filesystem read-only.
    disk=$(basename "$(readlink -f "$(bypath "$k_ro")")")
    echo 1 > "/sys/fs/ext4/$disk/trigger_fs_error"
    out=$(client stats --volume-id "$(volid "$k_ro")" --volume-path "$(target "$k_ro")")
    jq -r .volumeCondition.message <<<"$out"
    jq -e '.volumeCondition.abnormal == true' <<<"$out"
    # 6.1 does not flag the superblock read-only in mountinfo (newer kernels show emergency_ro): the
    # error ext4 recorded is what every kernel reports.
    jq -r .volumeCondition.message <<<"$out" | grep -Eq 'remounted read-only|recorded [0-9]+ error'
    not touch "$(target "$k_ro")/after-error"
    unpublish "$k_ro"
    unstage "$k_ro"
    stage "$k_ro" --fs-type ext4 --access-mode single-node-reader-only
    findmnt -n -o OPTIONS --mountpoint "$(staging "$k_ro")" | grep -q '^ro,'
    unstage "$k_ro"
}
step "ext4 remounted read-only after an error: abnormal; reader-only access mode: staged read-only" read_only_mode

chap() {
    local out
    out=$(stage "$k_chap" --fs-type ext4 2>&1) && { echo "stage without CHAP succeeded: $out"; return 1; }
    echo "$out"
    grep -q PermissionDenied <<<"$out"
    stage "$k_chap" --fs-type ext4 --secret "username=$chap_user" --secret "password=$chap_pass"
    mountpoint -q "$(staging "$k_chap")"
    iscsiadm -m node -T "$prefix.$k_chap" -p "$portal" -I default | grep -qx 'node.session.auth.authmethod = CHAP'
    not grep -q "$chap_pass" "$CSI_SCST_RESULTS/a.log"
    unstage "$k_chap"
    not has_session_iqn "$prefix.$k_chap"
}
step "CHAP from the node-stage secret; without it PERMISSION_DENIED; secret never logged" chap

xfs_copy() {
    local out
    stage "$k_src" --fs-type xfs
    out=$(stage "$k_copy" --fs-type xfs 2>&1) && { echo "second mount of the same XFS UUID succeeded without nouuid: $out"; return 1; }
    echo "$out" | tail -n 2
    unstage "$k_copy"
    stage "$k_copy" --fs-type xfs --volume-context csi-scst.io/content-source=snapshot
    findmnt -n -o OPTIONS --mountpoint "$(staging "$k_copy")" | grep -q nouuid
    unstage "$k_copy"
    unstage "$k_src"
}
step "XFS restored from a snapshot: mounted with nouuid next to its source" xfs_copy

multipath_volume() {
    local out dm map
    [ -f /etc/multipath.conf ] && cp /etc/multipath.conf "$work/multipath.conf.orig"
    systemctl stop multipathd.socket multipathd.service
    out=$(stage_portals "$k_mp" "$portal,$portal2" --fs-type ext4 2>&1) && { echo "stage without multipathd succeeded"; return 1; }
    echo "$out"
    grep -q FailedPrecondition <<<"$out"
    grep -q multipathd <<<"$out"
    unstage "$k_mp"
    printf 'defaults {\n    find_multipaths yes\n    user_friendly_names yes\n}\nblacklist {\n    devnode "^vd[a-z]"\n}\n' > /etc/multipath.conf
    systemctl start multipathd.service
    wait_for 30 multipathd show status
    stage_portals "$k_mp" "$portal,$portal2" --fs-type ext4
    multipath -ll
    dm=$(findmnt -n -o SOURCE --mountpoint "$(staging "$k_mp")")
    echo "staged on $dm"
    map=$(basename "$(readlink -f "$dm")")
    [ "$(cut -c1-6 "/sys/class/block/$map/dm/uuid")" = mpath- ]
    [ "$(ls "/sys/class/block/$map/slaves" | wc -l)" -eq 2 ]
    [ "$(iscsiadm -m session | grep -c " $prefix.$k_mp ")" -eq 2 ]
    iscsiadm -m node -T "$prefix.$k_mp" -p "$portal2" -I default | grep -qx 'node.session.timeo.replacement_timeout = 15'
    publish "$k_mp" --fs-type ext4
    client stats --volume-id "$(volid "$k_mp")" --volume-path "$(target "$k_mp")" | jq -e '(.volumeCondition.abnormal // false) == false'
    lvextend -q -L 96M "$vg/csi-$inst-$k_mp" >/dev/null
    out=$(client node-expand --volume-id "$(volid "$k_mp")" --volume-path "$(target "$k_mp")" --size 96Mi)
    echo "$out"
    [ "$(jq -r .capacityBytes <<<"$out")" = 100663296 ]
    unpublish "$k_mp"
    unstage "$k_mp"
    [ ! -e "/sys/class/block/$map" ]
    not has_session_iqn "$prefix.$k_mp"
    no_record "$prefix.$k_mp"
}
step "dm-multipath over two portals: refused without multipathd; map, expand (resize map), flush" multipath_volume

restart_and_orphans() {
    # A staged and published volume, a session a crashed stage left (logged in, nothing mounted),
    # and another installation's session.
    stage "$k_fs" --fs-type ext4
    publish "$k_fs" --fs-type ext4
    iscsiadm -m node -T "$prefix.$k_orphan" -p "$portal" -I default -o new >/dev/null
    iscsiadm -m node -T "$prefix.$k_orphan" -p "$portal" -I default --login
    iscsiadm -m node -T "$foreign" -p "$portal" -I default -o new >/dev/null
    iscsiadm -m node -T "$foreign" -p "$portal" -I default --login
    wait_for 30 test -e "/dev/disk/by-path/ip-$portal-iscsi-$prefix.$k_orphan-lun-0"
    stop_node a KILL
    echo written-while-the-plugin-was-down > "$(target "$k_fs")/during"
    start_a
    grep 'backs no staged volume' "$CSI_SCST_RESULTS/a.log"
    not has_session_iqn "$prefix.$k_orphan"
    no_record "$prefix.$k_orphan"
    has_session_iqn "$foreign"
    has_session_iqn "$prefix.$k_fs"
    [ "$(cat "$(target "$k_fs")/during")" = written-while-the-plugin-was-down ]
    iscsiadm -m node -T "$foreign" -p "$portal" -I default --logout
    iscsiadm -m node -T "$foreign" -p "$portal" -I default -o delete
    unpublish "$k_fs"
    unstage "$k_fs"
    not has_session_iqn "$prefix.$k_fs"
    no_record "$prefix.$k_fs"
}
step "kill -9 and restart: mounts keep working, orphaned sessions of this instance logged out, others kept, later unstage cleans up" restart_and_orphans

node_metrics() {
    local text
    text=$(metrics "$metrics_port")
    grep '^csi_scst_node_' <<<"$text" | grep -v '_bucket' | head -n 40
    grep -qx 'csi_scst_node_orphan_sessions_logged_out_total 1' <<<"$text"
    grep -q 'csi_scst_node_operations_total{operation="unstage",code="OK"} 1' <<<"$text"
    grep -q 'csi_scst_node_operation_duration_seconds_count{operation="unpublish",code="OK"} 1' <<<"$text"
    grep -q 'csi_scst_tool_runs_total{tool="iscsiadm",outcome="success"}' <<<"$text"
}
step "metrics of the restarted plugin: the orphan it cleaned, the calls it served" node_metrics

second_node() {
    local out
    start_node b "$sock_b" 9812 --iface "$iface_b" --initiator-name "$ini_b"
    [ "$(client_b node-info -o id)" = "vm-b/$ini_b" ]
    iscsiadm -m iface -I "$iface_b" | grep -qx "iface.initiatorname = $ini_b"
    mkdir -p "$(staging "$k_b")"
    # shellcheck disable=SC2046
    client_b stage --volume-id "$(volid "$k_b")" --staging-path "$(staging "$k_b")" $(ctx "$k_b") --fs-type ext4
    iscsiadm -m session -P 1 | grep -A 12 "Target: $prefix.$k_b" | grep -q "Iface Name: $iface_b"
    # Node a's initiator is not in this target's ACL.
    mkdir -p "$work/a-staging"
    # shellcheck disable=SC2046
    out=$(client stage --volume-id "$(volid "$k_b")" --staging-path "$work/a-staging" $(ctx "$k_b") --fs-type ext4 2>&1) && { echo "node a logged in: $out"; return 1; }
    echo "$out"
    client unstage --volume-id "$(volid "$k_b")" --staging-path "$work/a-staging"
    # Node a's start-up cleanup leaves node b's session alone (another iface).
    stop_node a
    start_a
    has_session_iqn "$prefix.$k_b"
    mountpoint -q "$(staging "$k_b")"
    client_b unstage --volume-id "$(volid "$k_b")" --staging-path "$(staging "$k_b")"
    not has_session_iqn "$prefix.$k_b"
    stop_node b
    iscsiadm -m iface -I "$iface_b" -o delete
}
step "second node through iface $iface_b: its own initiator name, ACL per initiator, cleanups never cross" second_node


stop_a() { stop_node a; }
step "stop csi-scst node (SIGTERM)" stop_a

teardown() {
    for k in $all_keys; do lio_target_delete "$prefix.$k"; lio_backstore_delete "csi_${inst}_$k"; done
    lio_target_delete "$foreign"; lio_backstore_delete csi_other_ff
    iscsiadm -m node -o delete 2>/dev/null || true
    vgremove -ff -y "$vg" >/dev/null
    pvremove -q -y "$disk" >/dev/null
    wipefs -a -q "$disk"
}
step "teardown" teardown
