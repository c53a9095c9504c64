# shellcheck shell=bash
# Volume flows for the end-to-end scenarios: what the external-provisioner, the external-attacher, the
# resizer, the snapshotter and kubelet do, as `csi-scst client` calls against the real roles started
# with driver.sh. Source after guest-lib.sh, lio.sh and driver.sh.
#
# A volume is known by a short NAME (also its CSI name); the answers of the calls live in $E2E:
#   NAME.json (CreateVolume), NAME.caps (its capability flags), NAME.NODE.pub.json (ControllerPublish),
#   NAME.sha256 (the data written to it). Kubelet's paths are under $DRV/kubelet-NODE.

E2E=$DRV/vols

# vol_create NAME "CAPABILITY FLAGS" [create-volume FLAG...]: CreateVolume; the caps are reused by
# publish, stage and node-publish (as kubelet passes the PV's capability to each call).
vol_create() {
    local n=$1 caps=$2; shift 2
    mkdir -p "$E2E"
    printf '%s\n' "$caps" > "$E2E/$n.caps"
    # shellcheck disable=SC2086
    ctl create-volume --name "$n" $caps "$@" > "$E2E/$n.json.new"
    mv "$E2E/$n.json.new" "$E2E/$n.json"
    jq -c '.volume | {volumeId, capacityBytes, volumeContext}' "$E2E/$n.json"
}
vol_id() { jq -r .volume.volumeId "$E2E/$1.json"; }
vol_caps() { cat "$E2E/$1.caps"; }
vol_capacity() { jq -r .volume.capacityBytes "$E2E/$1.json"; }
vol_ctx() { jq -r --arg k "$2" '.volume.volumeContext[$k] // empty' "$E2E/$1.json"; }
# The contexts as repeated flags, one per line (mapfile them).
vol_ctx_flags() { jq -r '.volume.volumeContext // {} | to_entries[] | "--volume-context", "\(.key)=\(.value)"' "$E2E/$1.json"; }
pub_ctx_flags() { jq -r '.publishContext // {} | to_entries[] | "--publish-context", "\(.key)=\(.value)"' "$E2E/$1.$2.pub.json"; }
pub_ctx() { jq -r --arg k "$3" '.publishContext[$k] // empty' "$E2E/$1.$2.pub.json"; }

staging_path() { echo "$DRV/kubelet-$2/plugins/kubernetes.io/csi/csi-scst.io/$1/globalmount"; }
target_path() { echo "$DRV/kubelet-$2/pods/pod-$1/volumes/kubernetes.io~csi/$1/mount"; }
# The by-path link of the volume's LUN on NODE's first portal.
vol_bypath() {
    local portals
    portals=$(pub_ctx "$1" "$2" csi-scst.io/portals)
    echo "/dev/disk/by-path/ip-${portals%%,*}-iscsi-$(pub_ctx "$1" "$2" csi-scst.io/iqn)-lun-$(pub_ctx "$1" "$2" csi-scst.io/lun)"
}

# vol_publish NAME NODE [publish FLAG...]: ControllerPublishVolume for NODE's node id.
vol_publish() {
    local n=$1 node=$2; shift 2
    # shellcheck disable=SC2046
    ctl publish --volume-id "$(vol_id "$n")" --node-id "$(node_id "$node")" $(vol_caps "$n") "$@" > "$E2E/$n.$node.pub.json.new"
    mv "$E2E/$n.$node.pub.json.new" "$E2E/$n.$node.pub.json"
    jq -c .publishContext "$E2E/$n.$node.pub.json"
}
vol_unpublish() { ctl unpublish --volume-id "$(vol_id "$1")" --node-id "$(node_id "$2")" >/dev/null; }

# vol_stage NAME NODE [stage FLAG...]: NodeStageVolume with both contexts, as kubelet calls it.
vol_stage() {
    local n=$1 node=$2 flags=() sp; shift 2
    mapfile -t flags < <(vol_ctx_flags "$n"; pub_ctx_flags "$n" "$node")
    sp=$(staging_path "$n" "$node")
    mkdir -p "$sp"
    # shellcheck disable=SC2046
    nd "$node" stage --volume-id "$(vol_id "$n")" --staging-path "$sp" $(vol_caps "$n") "${flags[@]}" "$@" >/dev/null
}
vol_unstage() { nd "$2" unstage --volume-id "$(vol_id "$1")" --staging-path "$(staging_path "$1" "$2")" >/dev/null; }

# vol_node_publish NAME NODE [FLAG...]: NodePublishVolume (kubelet makes the target's parent directory).
vol_node_publish() {
    local n=$1 node=$2 flags=() tp; shift 2
    mapfile -t flags < <(vol_ctx_flags "$n"; pub_ctx_flags "$n" "$node")
    tp=$(target_path "$n" "$node")
    mkdir -p "$(dirname "$tp")"
    # shellcheck disable=SC2046
    nd "$node" node-publish --volume-id "$(vol_id "$n")" --staging-path "$(staging_path "$n" "$node")" --target-path "$tp" \
        $(vol_caps "$n") "${flags[@]}" "$@" >/dev/null
}
vol_node_unpublish() { nd "$2" node-unpublish --volume-id "$(vol_id "$1")" --target-path "$(target_path "$1" "$2")" >/dev/null; }

# vol_attach NAME NODE: what happens when a pod using the volume starts on NODE.
vol_attach() { vol_publish "$1" "$2" >/dev/null; vol_stage "$1" "$2"; vol_node_publish "$1" "$2"; }
# vol_detach NAME NODE: and when it goes away.
vol_detach() { vol_node_unpublish "$1" "$2"; vol_unstage "$1" "$2"; vol_unpublish "$1" "$2"; }

has_session_iqn() { iscsiadm -m session 2>/dev/null | awk '{print $4}' | grep -qx "$1"; }
not() { if "$@"; then echo "unexpectedly true: $*" >&2; return 1; fi; }   # "! cmd" would not stop a set -e step

# check_staged NAME NODE [FSTYPE]: a session to the volume's target, the by-path disk carrying the
# volume's serial, and (filesystem volumes) the staging mount on that disk with FSTYPE.
check_staged() {
    local n=$1 node=$2 fs=${3:-} bp dev got
    has_session_iqn "$(pub_ctx "$n" "$node" csi-scst.io/iqn)"
    bp=$(vol_bypath "$n" "$node")
    test -b "$bp"
    dev=$(readlink -f "$bp")
    # tgt right-aligns the serial in its field (leading spaces); LIO and
    # SCST write it as given. The node plugin compares it trimmed, so does this check.
    got=$(vpd80_serial "/sys/class/block/${dev#/dev/}/device/vpd_pg80" | sed 's/^[[:space:]]*//')
    echo "$n on $node: $bp -> $dev, VPD 0x80 serial '$got'"
    [ "$got" = "$(vol_ctx "$n" csi-scst.io/serial)" ]
    if [ -n "$fs" ]; then
        findmnt -n -o SOURCE,FSTYPE,OPTIONS --mountpoint "$(staging_path "$n" "$node")"
        [ "$(findmnt -n -o SOURCE --mountpoint "$(staging_path "$n" "$node")")" = "$dev" ]
        [ "$(findmnt -n -o FSTYPE --mountpoint "$(staging_path "$n" "$node")")" = "$fs" ]
    fi
}

# write_file NAME NODE FILE MiB: random data into the published filesystem, its checksum kept.
write_file() {
    local n=$1 node=$2 f=$3 mib=$4 tp
    tp=$(target_path "$n" "$node")
    dd if=/dev/urandom of="$tp/$f" bs=1M count="$mib" conv=fsync status=none
    (cd "$tp" && sha256sum "$f") > "$E2E/$n.$f.sha256"
    sync -f "$tp/$f"
    cat "$E2E/$n.$f.sha256"
}
# verify_file NAME NODE FILE [FROM_VOLUME]: the file holds what was written (to FROM_VOLUME).
verify_file() {
    local tp
    tp=$(target_path "$1" "$2")
    (cd "$tp" && sha256sum -c "$E2E/${4:-$1}.$3.sha256")
}
# write_block NAME NODE OFFSET_MiB MiB: random data onto the published block device (O_DIRECT).
write_block() {
    local n=$1 node=$2 off=$3 mib=$4
    dd if=/dev/urandom of="$E2E/$n.blk.$off" bs=1M count="$mib" status=none
    dd if="$E2E/$n.blk.$off" of="$(target_path "$n" "$node")" bs=1M seek="$off" oflag=direct conv=notrunc status=none
    sha256sum < "$E2E/$n.blk.$off" | tee "$E2E/$n.blk.$off.sha256"
}
# verify_block NAME NODE OFFSET_MiB MiB [FROM_VOLUME]
verify_block() {
    local got
    got=$(dd if="$(target_path "$1" "$2")" bs=1M skip="$3" count="$4" iflag=direct status=none | sha256sum)
    echo "read back at ${3} MiB: $got"
    [ "$got" = "$(cat "$E2E/${5:-$1}.blk.$3.sha256")" ]
}

fs_size() { df -B1 --output=size "$1" | tail -n1 | tr -d ' '; }

# ---- what must be gone ------------------------------------------------------------------------

# nothing_left [CEPH_DIR POOL]: no LV, RBD image, LIO object, tgt target, session, node record, kubelet
# mount or engine state of this instance is left.
nothing_left() {
    local cdir=${1:-} pool=${2:-} out bad=0
    out=$(lvs --noheadings -o vg_name,lv_name 2>/dev/null | awk -v p="csi-$DRV_INSTANCE-" 'index($2, p) == 1')
    [ -z "$out" ] || { echo "LVs left: $out"; bad=1; }
    if [ -n "$cdir" ]; then
        out=$(vm_rbd "$cdir" ls "$pool" | grep "^csi-$DRV_INSTANCE-" || true)
        [ -z "$out" ] || { echo "RBD images left: $out"; bad=1; }
        [ -z "$(ls /sys/bus/rbd/devices 2>/dev/null)" ] || { echo "RBD mappings left: $(ls /sys/bus/rbd/devices)"; bad=1; }
    fi
    out=$(lio_list)
    [ -z "$out" ] || { echo "LIO objects left: $out"; bad=1; }
    out=$(iscsiadm -m session 2>/dev/null || true)
    [ -z "$out" ] || { echo "iSCSI sessions left: $out"; bad=1; }
    out=$(ls /etc/iscsi/nodes 2>/dev/null || true)
    [ -z "$out" ] || { echo "iSCSI node records left: $out"; bad=1; }
    out=$(findmnt -rn -o TARGET | grep "^$DRV/" || true)
    [ -z "$out" ] || { echo "mounts left: $out"; bad=1; }
    out=$(find "$DRV/state" -name '*.json' 2>/dev/null || true)
    [ -z "$out" ] || { echo "engine state left: $out"; bad=1; }
    out=$(ctl list-volumes | jq -r '.entries[]?.volume.volumeId')
    [ -z "$out" ] || { echo "ListVolumes still reports: $out"; bad=1; }
    out=$(ctl list-snapshots | jq -r '.entries[]?.snapshot.snapshotId')
    [ -z "$out" ] || { echo "ListSnapshots still reports: $out"; bad=1; }
    [ "$bad" -eq 0 ] && echo "no LV, image, backstore, target, session, node record, mount or state left"
    return "$bad"
}

# ---- the filesystem lifecycle -----------------------------------------------------------------

# fs_lifecycle TAG POOL FS SIZE_MiB GROW_MiB [CEPH_DIR CEPH_POOL]: one filesystem volume through its
# whole life on node "a", each part a step: create → publish → stage → publish → data → unpublish →
# unstage → restage → data intact → online expand → snapshot → a volume from the snapshot holds the
# snapshot's data → delete everything → nothing left. The caller starts target, controller and node a.
# E2E_SNAPSHOTS_PIN_SOURCE=1: the pool's snapshots live off their volume (thick LVM, RBD), so deleting
# the volume before its snapshot is FAILED_PRECONDITION; otherwise (thin LVM, files) it is allowed.
fs_lifecycle() {
    local tag=$1 pool=$2 fs=$3 size=$4 grow=$5 cdir=${6:-} cpool=${7:-}
    local v=$tag-vol r=$tag-restored s=$tag-snap

    step "[$tag] CreateVolume ${size}Mi $fs in pool $pool" fs_create "$v" "$pool" "$fs" "$size"
    step "[$tag] ControllerPublishVolume to node a" vol_publish "$v" a
    step "[$tag] NodeStageVolume: iscsiadm login, by-path disk, serial check, mkfs.$fs, mount" fs_stage "$v" "$fs"
    step "[$tag] NodePublishVolume: bind mount, write 8 MiB with a checksum" fs_publish_write "$v"
    step "[$tag] NodeUnpublishVolume + NodeUnstageVolume: no mount, no session" fs_unstage "$v"
    step "[$tag] NodeStageVolume + NodePublishVolume again: data intact (not reformatted)" fs_restage "$v" "$fs"
    step "[$tag] online expand to ${grow}Mi: ControllerExpandVolume + NodeExpandVolume grow the mounted $fs" fs_expand "$v" "$grow"
    step "[$tag] CreateSnapshot (then data written after it)" fs_snapshot "$v" "$s"
    step "[$tag] CreateVolume from the snapshot: holds the snapshot's data only" fs_restore "$v" "$s" "$r" "$fs" "$grow"
    step "[$tag] delete everything: unpublish, unstage, DeleteVolume, DeleteSnapshot" fs_delete_all "$v" "$s" "$r"
    step "[$tag] nothing left behind" nothing_left "$cdir" "$cpool"
}

fs_create() {
    local v=$1 pool=$2 fs=$3 size=$4
    vol_create "$v" "--fs-type $fs" --size "${size}Mi" --param "pool=$pool" --param "fsType=$fs"
    [ "$(vol_capacity "$v")" -ge $((size << 20)) ]
    [ "$(vol_ctx "$v" csi-scst.io/serial)" = "$(vol_serial "$(vol_id "$v")")" ]
    # A retry (same name, same parameters) answers the same volume.
    local again
    # shellcheck disable=SC2046
    again=$(ctl create-volume --name "$v" $(vol_caps "$v") --size "${size}Mi" --param "pool=$pool" --param "fsType=$fs" -o id)
    [ "$again" = "$(vol_id "$v")" ]
}

fs_stage() {
    local v=$1 fs=$2
    vol_stage "$v" a
    check_staged "$v" a "$fs"
    # Staging twice is OK (kubelet retries).
    vol_stage "$v" a
    [ "$(iscsiadm -m session | grep -c " $(vol_iqn "$(vol_id "$v")") ")" -eq 1 ]
}

fs_publish_write() {
    local v=$1
    vol_node_publish "$v" a
    mountpoint -q "$(target_path "$v" a)"
    write_file "$v" a before 8
}

fs_unstage() {
    local v=$1 iqn
    iqn=$(pub_ctx "$v" a csi-scst.io/iqn)
    vol_node_unpublish "$v" a
    vol_unstage "$v" a
    not mountpoint -q "$(staging_path "$v" a)"
    [ ! -e "$(target_path "$v" a)" ]
    not has_session_iqn "$iqn"
    expect_rc 21 iscsiadm -m node -T "$iqn"
}

fs_restage() {
    local v=$1 fs=$2
    vol_stage "$v" a
    check_staged "$v" a "$fs"
    vol_node_publish "$v" a
    verify_file "$v" a before
}

fs_expand() {
    local v=$1 grow=$2 out before after dev_before dev_after
    before=$(fs_size "$(target_path "$v" a)")
    dev_before=$(blockdev --getsize64 "$(vol_bypath "$v" a)")
    # shellcheck disable=SC2046
    out=$(ctl expand-volume --volume-id "$(vol_id "$v")" --size "${grow}Mi" $(vol_caps "$v"))
    echo "ControllerExpandVolume: $(jq -c . <<<"$out")"
    [ "$(jq -r .capacityBytes <<<"$out")" -ge $((grow << 20)) ]
    [ "$(jq -r '.nodeExpansionRequired // false' <<<"$out")" = true ]
    # shellcheck disable=SC2046
    out=$(nd a node-expand --volume-id "$(vol_id "$v")" --volume-path "$(target_path "$v" a)" \
        --staging-path "$(staging_path "$v" a)" --size "${grow}Mi" $(vol_caps "$v"))
    echo "NodeExpandVolume: $(jq -c . <<<"$out")"
    after=$(fs_size "$(target_path "$v" a)")
    dev_after=$(blockdev --getsize64 "$(vol_bypath "$v" a)")
    echo "disk: $dev_before -> $dev_after bytes; filesystem: $before -> $after bytes (still mounted)"
    [ "$dev_after" -ge $((grow << 20)) ]
    # The filesystem took (nearly) all the new space (its log and metadata were there before).
    [ $((after - before)) -ge $(( (dev_after - dev_before) * 9 / 10 )) ]
    verify_file "$v" a before
}

fs_snapshot() {
    local v=$1 s=$2 out
    sync -f "$(target_path "$v" a)/before"
    out=$(ctl create-snapshot --source-volume-id "$(vol_id "$v")" --name "$s")
    echo "$out" | jq -c .snapshot
    [ "$(jq -r .snapshot.readyToUse <<<"$out")" = true ]
    jq -r .snapshot.snapshotId <<<"$out" > "$E2E/$s.id"
    # Idempotent: the same name answers the same snapshot.
    [ "$(ctl create-snapshot --source-volume-id "$(vol_id "$v")" --name "$s" -o id)" = "$(cat "$E2E/$s.id")" ]
    ctl list-snapshots --source-volume-id "$(vol_id "$v")" | jq -e --arg id "$(cat "$E2E/$s.id")" '[.entries[].snapshot.snapshotId] | index($id) != null' >/dev/null
    write_file "$v" a after 2
}

fs_restore() {
    local v=$1 s=$2 r=$3 fs=$4 size=$5
    vol_create "$r" "--fs-type $fs" --size "${size}Mi" --param "pool=$(vol_id "$v" | cut -d: -f5)" \
        --param "fsType=$fs" --from-snapshot "$(cat "$E2E/$s.id")"
    [ "$(vol_ctx "$r" csi-scst.io/content-source)" = snapshot ]
    vol_attach "$r" a
    check_staged "$r" a "$fs"
    verify_file "$r" a before "$v"
    [ ! -e "$(target_path "$r" a)/after" ]
    # The source, still mounted next to it, is untouched.
    verify_file "$v" a after
}

fs_delete_all() {
    local v=$1 s=$2 r=$3 out
    vol_detach "$r" a
    vol_node_unpublish "$v" a
    vol_unstage "$v" a
    # Published volumes are not deleted: the attacher unpublishes first.
    out=$(ctl delete-volume --volume-id "$(vol_id "$v")" 2>&1) && { echo "DeleteVolume of a published volume succeeded"; return 1; }
    echo "while published: $out"
    vol_unpublish "$v" a
    ctl delete-volume --volume-id "$(vol_id "$r")" >/dev/null
    if [ "${E2E_SNAPSHOTS_PIN_SOURCE:-0}" = 1 ]; then
        out=$(ctl delete-volume --volume-id "$(vol_id "$v")" 2>&1) && { echo "DeleteVolume with a snapshot succeeded"; return 1; }
        echo "with a snapshot: $out"
        grep -q FailedPrecondition <<<"$out"
        ctl delete-snapshot --snapshot-id "$(cat "$E2E/$s.id")" >/dev/null
        ctl delete-volume --volume-id "$(vol_id "$v")" >/dev/null
    else
        # Snapshots outlive their volume.
        ctl delete-volume --volume-id "$(vol_id "$v")" >/dev/null
        ctl get-snapshot --snapshot-id "$(cat "$E2E/$s.id")" | jq -c .snapshot
        ctl delete-snapshot --snapshot-id "$(cat "$E2E/$s.id")" >/dev/null
    fi
    ctl delete-snapshot --snapshot-id "$(cat "$E2E/$s.id")" >/dev/null   # again: OK
    ctl delete-volume --volume-id "$(vol_id "$v")" >/dev/null           # again: OK
    expect_rc 105 ctl get-volume --volume-id "$(vol_id "$v")"
}

# e2e_force_cleanup: best effort for EXIT traps after a failure (unmount kubelet paths, log out, forget
# records, remove LIO objects); on a passing run there is nothing left to do.
e2e_force_cleanup() {
    local d
    for d in $(findmnt -rn -o TARGET | grep "^$DRV/" | sort -r); do umount -l "$d" 2>/dev/null; done
    iscsiadm -m node -U all >/dev/null 2>&1
    iscsiadm -m node -o delete >/dev/null 2>&1
    iscsiadm -m discoverydb -o delete >/dev/null 2>&1
    lio_clear_all
    # krbd with single_major (the default) takes removals only through remove_single_major.
    for d in /sys/bus/rbd/devices/*; do
        [ -e "$d" ] && echo "${d##*/} force" > /sys/bus/rbd/remove_single_major 2>/dev/null
    done
    return 0
}
