#!/bin/bash
# vm-timeout: 900
# Smoke test of krbd: a single-node Ceph cluster inside the VM (mon + mgr + one memstore OSD on
# 127.0.0.1), an RBD image mapped with the kernel client, formatted, written, unmapped, mapped
# again and verified; then everything removed.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/ceph.sh"

cdir=$CSI_SCST_WORK/ceph
image=rbd/smoke1
mnt=$CSI_SCST_WORK/mnt

cleanup() {
    set +e
    mountpoint -q "$mnt" && umount "$mnt"
    [ -f "$CSI_SCST_WORK/dev" ] && rbd unmap -o force "$(cat "$CSI_SCST_WORK/dev")" >/dev/null 2>&1
    ceph_stop "$cdir"
}
trap cleanup EXIT

bootstrap() { ceph_bootstrap "$cdir"; ls "$cdir"; }
mgr_up() { wait_for 300 ceph_mgr_available "$cdir"; vm_ceph "$cdir" mgr stat; }
pool() { ceph_pool "$cdir" rbd; vm_ceph "$cdir" osd pool ls detail; }
health_ok() { vm_ceph "$cdir" health | grep -q '^HEALTH_OK'; }
health() { wait_for 180 health_ok || true; vm_ceph "$cdir" -s; health_ok; }
create() { vm_rbd "$cdir" create --size 128M "$image"; vm_rbd "$cdir" info "$image"; }

map() {
    local dev
    dev=$(vm_rbd "$cdir" map "$image")
    echo "$dev" > "$CSI_SCST_WORK/dev"
    echo "mapped at $dev"
    test -b "$dev"
    vm_rbd "$cdir" showmapped
}

mkfs_write() {
    local dev
    dev=$(cat "$CSI_SCST_WORK/dev")
    mkfs.ext4 -q -F "$dev"
    mkdir -p "$mnt"
    mount "$dev" "$mnt"
    dd if=/dev/urandom of="$mnt/data" bs=1M count=16 status=none
    (cd "$mnt" && sha256sum data) > "$CSI_SCST_WORK/data.sha256"
    cat "$CSI_SCST_WORK/data.sha256"
    umount "$mnt"
}

unmap() {
    vm_rbd "$cdir" unmap "$(cat "$CSI_SCST_WORK/dev")"
    rm -f "$CSI_SCST_WORK/dev"
    test -z "$(ls /sys/bus/rbd/devices)"
}

verify() {
    local dev
    dev=$(cat "$CSI_SCST_WORK/dev")
    mount "$dev" "$mnt"
    (cd "$mnt" && sha256sum -c "$CSI_SCST_WORK/data.sha256")
    umount "$mnt"
}

remove() { vm_rbd "$cdir" rm --no-progress "$image"; vm_rbd "$cdir" ls rbd; }
stop() {
    local d
    ceph_stop "$cdir"
    for d in ceph-mon ceph-mgr ceph-osd; do
        if pgrep -a -x "$d"; then echo "$d still running" >&2; return 1; fi
    done
}

step "ceph: keys, monmap, mon, mgr, osd started" bootstrap
step "ceph: OSD up and in" ceph_wait_osd "$cdir"
step "ceph: pool rbd" pool
step "ceph: mgr available" mgr_up
step "ceph: HEALTH_OK" health
step "rbd create 128M" create
step "rbd map (krbd)" map
step "mkfs.ext4 + mount + write 16 MiB + umount" mkfs_write
step "rbd unmap" unmap
step "rbd map again" map
step "mount + verify checksum + umount" verify
step "rbd unmap (final)" unmap
step "rbd rm" remove
step "ceph: stop daemons" stop
