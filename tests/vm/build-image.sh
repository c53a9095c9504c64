#!/bin/bash
# Builds (or reuses) the Debian bookworm VM image for the csi-scst real-kernel harness.
#
#   tests/vm/build-image.sh            # prints the cache entry directory on stdout (last line)
#
# Output, in ${CSI_SCST_VM_CACHE:-/var/cache/csi-scst-vm}/<hash>/:
#   root.img      raw ext4 root filesystem (boot it with -snapshot / snapshot=on to keep it pristine)
#   vmlinuz       the image's kernel
#   initrd.img    the image's initramfs
#   manifest.txt  versions of the packages that matter (for captures/README and reports)
#   timings.txt   how long each build phase took
#   COMPLETE      written last; an entry without it is never used
#
# <hash> covers this script, image/packages.txt, everything under image/overlay, the mirror, the
# suite and the architecture, so the image is rebuilt exactly when one of them changes. The build
# happens in a temporary directory next to the cache entry and is renamed into place at the end,
# so an interrupted build never leaves an entry that looks complete.
#
# Environment:
#   CSI_SCST_VM_CACHE    cache root (default /var/cache/csi-scst-vm)
#   CSI_SCST_VM_MIRROR   Debian mirror (default: the first bookworm URI apt uses on this machine)
#   CSI_SCST_VM_REBUILD  1 = ignore an existing entry and build again
#   CSI_SCST_VM_KEEP     how many built images to keep in the cache (default 2)
set -euo pipefail
{ # the whole script is parsed before it runs: editing it during a run cannot change that run


here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=bookworm
arch=amd64
cache_root=${CSI_SCST_VM_CACHE:-/var/cache/csi-scst-vm}
log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"

# The mirror apt uses here: deb822 sources first, then one-line sources.list entries.
detect_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v s="$suite" '
            /^[ \t]*$/ { if (u != "" && hit) { print u; exit } u = ""; hit = 0; next }
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
            END { if (u != "" && hit) print u }' "$f" | head -n1)
        [ -n "$uri" ] && { printf '%s\n' "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk -v s="$suite" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i+1) == s) { print $i; exit } } }' "$f")
        [ -n "$uri" ] && { printf '%s\n' "$uri"; return 0; }
    done
    printf '%s\n' "http://deb.debian.org/debian"
}
mirror=${CSI_SCST_VM_MIRROR:-$(detect_mirror)}

packages=$(grep -v '^[[:space:]]*#' "$here/image/packages.txt" | tr -s ' \t\n' '\n' | grep -v '^$' | sort -u)
include=$(printf '%s\n' "$packages" | paste -sd, -)

# Hash of every input. File list is sorted so the order of `find` does not matter.
hash=$(
    {
        printf 'suite=%s arch=%s mirror=%s\n' "$suite" "$arch" "$mirror"
        printf 'packages=%s\n' "$include"
        sha256sum "$here/build-image.sh" | cut -d' ' -f1
        (cd "$here/image/overlay" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        (cd "$here/image/overlay" && find . -type f -perm -u+x | LC_ALL=C sort)
    } | sha256sum | cut -c1-16
)
entry="$cache_root/$hash"

if [ "${CSI_SCST_VM_REBUILD:-0}" != 1 ] && [ -f "$entry/COMPLETE" ]; then
    log "cached image $entry"
    printf '%s\n' "$entry"
    exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap is not installed (tests/vm/install-host-deps.sh)"
command -v mke2fs >/dev/null || die "mke2fs is not installed (e2fsprogs)"

mkdir -p "$cache_root"
# One builder per hash at a time; a second one waits, then finds the entry complete.
exec 9>"$cache_root/.lock-$hash"
flock 9
if [ "${CSI_SCST_VM_REBUILD:-0}" != 1 ] && [ -f "$entry/COMPLETE" ]; then
    log "cached image $entry (built by another process)"
    printf '%s\n' "$entry"
    exit 0
fi

unmount_below() { # unmount everything mounted below $1, deepest first
    local m
    awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}
# Leftovers of killed builds of this hash (we hold its lock, so none is running). A SIGKILLed
# debootstrap can leave /proc and /sys mounted inside: unmount first, never cross file systems.
for old in "$cache_root/.build-$hash".*; do
    [ -d "$old" ] || continue
    unmount_below "$old"
    rm -rf --one-file-system "$old"
done

work=$(mktemp -d "$cache_root/.build-$hash.XXXXXX")
rootfs="$work/rootfs"
child=""

cleanup() {
    local rc=$?
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then   # interrupted during debootstrap
        kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    unmount_below "$rootfs"
    if [ $rc -ne 0 ]; then   # keep the logs of a failed build for diagnosis
        cat "$work/debootstrap.log" "$rootfs/debootstrap/debootstrap.log" > "$cache_root/failed-build-$hash.log" 2>/dev/null || true
    fi
    unmount_below "$rootfs"
    rm -rf --one-file-system "$work"
    [ $rc -ne 0 ] && log "build failed (rc=$rc); nothing was cached; logs: $cache_root/failed-build-$hash.log"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t_all=$(now)
log "building $entry"
log "mirror $mirror, suite $suite, packages: $include"

# debootstrap resolves the dependencies of --include (not Recommends). minbase keeps it lean.
t=$(now)
# --cache-dir keeps the downloaded .debs for the next build on this machine (not an input: the
# packages are verified against the mirror's Release file either way).
mkdir -p "$cache_root/debs"
DEBIAN_FRONTEND=noninteractive setsid debootstrap --variant=minbase --arch="$arch" --components=main \
    --cache-dir="$cache_root/debs" --include="$include" "$suite" "$rootfs" "$mirror" \
    > "$work/debootstrap.log" 2>&1 &
child=$!   # own process group (setsid), waited for in the background so INT/TERM reach the trap at once
if ! wait "$child"; then
    child=""
    tail -n 40 "$work/debootstrap.log" >&2
    die "debootstrap failed"
fi
child=""
t_debootstrap=$(elapsed "$t")
log "debootstrap: ${t_debootstrap}s"

t=$(now)
unmount_below "$rootfs"   # debootstrap can leave /proc or /sys mounted on some hosts

in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }

# Harness files (unit + runner).
cp -a "$here/image/overlay/." "$rootfs/"
chown -R 0:0 "$rootfs/etc/systemd/system/csi-scst-run.service" "$rootfs/usr/local/sbin/csi-scst-run"
chmod 0644 "$rootfs/etc/systemd/system/csi-scst-run.service"
chmod 0755 "$rootfs/usr/local/sbin/csi-scst-run"

echo csi-vm > "$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcsi-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$rootfs/etc/hosts"
# By label: the disk order seen by the guest is run-vm.sh's business, not the image's.
printf 'LABEL=csi-vm-root\t/\text4\trw,errors=remount-ro\t0\t1\n' > "$rootfs/etc/fstab"
# Fixed initiator name so captures and scenarios are reproducible. iscsid.conf stays as shipped.
echo "InitiatorName=iqn.1993-08.org.debian:01:csi-scst-vm" > "$rootfs/etc/iscsi/initiatorname.iscsi"
chmod 0600 "$rootfs/etc/iscsi/initiatorname.iscsi"
# Serial console for debugging: root logs in without a password (throw-away test VM, no network).
in_root passwd -d root >/dev/null
mkdir -p "$rootfs/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$rootfs/etc/systemd/journald.conf.d/csi-scst.conf"

# Units: ours on; tgt off (it grabs port 3260); timers and daemons that only cost boot time off.
in_root systemctl enable csi-scst-run.service >/dev/null 2>&1
in_root systemctl enable iscsid.socket >/dev/null 2>&1 || true
for unit in tgt.service ceph-crash.service ceph.target ceph-mon.target ceph-mgr.target ceph-osd.target \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    man-db.timer logrotate.timer dpkg-db-backup.timer open-iscsi.service; do
    in_root systemctl disable "$unit" >/dev/null 2>&1 || true
done
in_root systemctl mask tgt.service ceph-crash.service >/dev/null 2>&1 || true

# Kernel and initrd for -kernel/-initrd.
kver=$(in_root dpkg-query -W -f='${Depends}' linux-image-amd64 | grep -o 'linux-image-[0-9][^ ,]*' | head -n1 | sed 's/^linux-image-//')
if [ -z "$kver" ] || [ ! -f "$rootfs/boot/vmlinuz-$kver" ]; then
    die "kernel not found in the image (kver='$kver')"
fi
[ -f "$rootfs/boot/initrd.img-$kver" ] || in_root update-initramfs -c -k "$kver" >/dev/null
cp "$rootfs/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$work/initrd.img"

{
    echo "suite=$suite arch=$arch mirror=$mirror"
    echo "kernel=$kver"
    in_root dpkg-query -W -f='${Package}=${Version}\n' \
        linux-image-amd64 "linux-image-$kver" systemd udev open-iscsi lvm2 thin-provisioning-tools \
        e2fsprogs xfsprogs util-linux multipath-tools sg3-utils iproute2 ceph-mon ceph-mgr ceph-osd \
        ceph-common tgt jq 2>/dev/null
} > "$work/manifest.txt"
in_root dpkg-query -W -f='${Package}=${Version}\n' > "$work/packages-all.txt"

# Drop what the VM never needs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
t_configure=$(elapsed "$t")
log "configure: ${t_configure}s"

# Raw ext4 image straight from the directory (mke2fs -d): no loop device, no mount.
t=$(now)
used_kib=$(du -sxk "$rootfs" | cut -f1)
size_mib=$(( used_kib / 1024 + 2048 ))   # 2 GiB free for /tmp, /var/tmp, Ceph files, logs
mke2fs -q -F -t ext4 -L csi-vm-root -E root_owner=0:0 -d "$rootfs" "$work/root.img" "${size_mib}M" \
    || die "mke2fs -d failed"
e2fsck -fn "$work/root.img" >/dev/null 2>&1 || die "e2fsck found errors in the new image"
t_image=$(elapsed "$t")
log "root.img (${size_mib} MiB, $(( used_kib / 1024 )) MiB used): ${t_image}s"

unmount_below "$rootfs"
rm -rf "$rootfs" "$work/debootstrap.log"
{
    echo "debootstrap_seconds=$t_debootstrap"
    echo "configure_seconds=$t_configure"
    echo "mkfs_seconds=$t_image"
    echo "total_seconds=$(elapsed "$t_all")"
    echo "rootfs_used_mib=$(( used_kib / 1024 ))"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$work/timings.txt"
touch "$work/COMPLETE"

# An incomplete leftover with the same hash (e.g. CSI_SCST_VM_REBUILD=1) is replaced.
rm -rf "$entry"
mv "$work" "$entry"
trap - EXIT

# Keep the newest ${CSI_SCST_VM_KEEP:-2} complete images (each ~1 GiB on disk); older ones and
# their lock files go. A qemu still using a removed image keeps its open file.
keep=${CSI_SCST_VM_KEEP:-2}
ls -1dt "$cache_root"/*/COMPLETE 2>/dev/null | tail -n +"$((keep + 1))" | while read -r old; do
    old=$(dirname "$old")
    [ "$old" = "$entry" ] && continue
    log "removing old image $old"
    rm -rf "$old" "$cache_root/.lock-$(basename "$old")"
done
log "image ready in $(elapsed "$t_all")s: $entry"
printf '%s\n' "$entry"
exit
}
