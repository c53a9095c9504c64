#!/bin/bash
# Boots the csi-scst test VM once: IN_DIR is shared read-only as 9p tag `in` (it must hold
# guest-run.sh), OUT_DIR read-write as `out`. The guest runs /mnt/in/guest-run.sh and powers off.
#
#   tests/vm/run-vm.sh IN_DIR OUT_DIR [--timeout S] [--disks N] [--disk-size SIZE] [--verbose]
#
#   --timeout S     hard limit for the whole VM (default 3600); qemu is killed after it. The guest
#                   runner gets S-60 so it can still save its logs.
#   --disks N       scratch virtio disks (default 2), sparse raw files made for this run and
#                   deleted after it; the guest sees them as /dev/disk/by-id/virtio-csi-diskN
#   --disk-size S   size of each scratch disk (default 2G)
#   --verbose       also copy the serial console to stdout (it always goes to OUT_DIR/console.log)
#
# Environment: CSI_SCST_VM_IMAGE=DIR uses that image directory instead of calling build-image.sh.
# Exit code: the guest's guest-run.sh exit code; 3 when the guest never reported one (crash,
# timeout, boot failure: see OUT_DIR/console.log).
set -euo pipefail
{ # the whole script is parsed before it runs: editing it during a run cannot change that run


here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[run-vm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
now() { date +%s.%N; }

[ $# -ge 2 ] || die "usage: run-vm.sh IN_DIR OUT_DIR [--timeout S] [--disks N] [--disk-size SIZE] [--verbose]"
in_dir=$1 out_dir=$2
shift 2
timeout_s=3600 disks=2 disk_size=2G verbose=0
while [ $# -gt 0 ]; do
    case "$1" in
        --timeout) timeout_s=$2; shift 2 ;;
        --disks) disks=$2; shift 2 ;;
        --disk-size) disk_size=$2; shift 2 ;;
        --verbose) verbose=1; shift ;;
        *) die "unknown option $1" ;;
    esac
done
case "$timeout_s" in ''|*[!0-9]*) die "--timeout needs seconds" ;; esac
case "$disks" in ''|*[!0-9]*) die "--disks needs a number" ;; esac
[ "$timeout_s" -ge 120 ] || die "--timeout must be at least 120"
[ -f "$in_dir/guest-run.sh" ] || die "$in_dir/guest-run.sh is missing"
mkdir -p "$out_dir"
in_dir=$(cd "$in_dir" && pwd)
out_dir=$(cd "$out_dir" && pwd)
rm -f "$out_dir/guest-run.rc"

image=${CSI_SCST_VM_IMAGE:-}
[ -n "$image" ] || image=$("$here/build-image.sh" | tail -n1)
for f in root.img vmlinuz initrd.img COMPLETE; do
    [ -f "$image/$f" ] || die "image $image has no $f"
done

scratch=$(mktemp -d "${TMPDIR:-/var/tmp}/csi-scst-vm-disks.XXXXXX")
cleanup() { rm -rf "$scratch"; }
trap cleanup EXIT

# shellcheck disable=SC2054 # commas belong to qemu option values
qemu_args=(
    -accel tcg,thread=multi -cpu max -smp 2 -m 4096
    -nographic -no-reboot -nodefaults -serial stdio -monitor none
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img"
    -append "root=LABEL=csi-vm-root rw console=ttyS0 panic=-1 csi_scst_run=1 csi_scst_timeout=$((timeout_s - 60))"
    -drive "file=$image/root.img,if=none,id=root,format=raw,cache=unsafe,snapshot=on"
    -device virtio-blk-pci,drive=root,serial=csi-root
    -virtfs "local,path=$in_dir,mount_tag=in,security_model=none,readonly=on"
    -virtfs "local,path=$out_dir,mount_tag=out,security_model=none"
    -nic none
)
for i in $(seq 1 "$disks"); do
    truncate -s "$disk_size" "$scratch/disk$i.img"
    qemu_args+=(
        -drive "file=$scratch/disk$i.img,if=none,id=disk$i,format=raw,cache=unsafe"
        -device "virtio-blk-pci,drive=disk$i,serial=csi-disk$i"
    )
done

log "image $image"
log "booting (timeout ${timeout_s}s, $disks scratch disk(s) of $disk_size)"
t0=$(now)
echo "host_epoch_at_qemu_start=$t0" > "$out_dir/vm-timings.txt"
qemu_rc=0
if [ "$verbose" -eq 1 ]; then
    timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 "${qemu_args[@]}" < /dev/null 2>&1 \
        | tee "$out_dir/console.log" || qemu_rc=${PIPESTATUS[0]}
else
    timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 "${qemu_args[@]}" \
        < /dev/null > "$out_dir/console.log" 2>&1 || qemu_rc=$?
fi
t1=$(now)
vm_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
{
    echo "qemu_exit=$qemu_rc"
    echo "vm_seconds=$vm_seconds"
    if [ -f "$out_dir/guest-boot.txt" ]; then
        # Boot to script: host clock at qemu start to the guest clock (RTC-seeded) at runner start.
        start=$(sed -n 's/^epoch_at_start=//p' "$out_dir/guest-boot.txt")
        up=$(sed -n 's/^uptime_at_start=//p' "$out_dir/guest-boot.txt")
        echo "boot_to_script_seconds=$(awk -v a="$t0" -v b="$start" 'BEGIN { printf "%.1f", b - a }')"
        echo "guest_uptime_at_script_start=$up"
    fi
} >> "$out_dir/vm-timings.txt"

if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
    log "qemu killed after the ${timeout_s}s timeout"
fi
if [ ! -f "$out_dir/guest-run.rc" ]; then
    log "the guest reported no result (qemu exit $qemu_rc); last console lines:"
    tail -n 30 "$out_dir/console.log" >&2 || true
    exit 3
fi
rc=$(cat "$out_dir/guest-run.rc")
log "guest-run.sh exited $rc; VM ran ${vm_seconds}s"
exit "$rc"
exit
}
