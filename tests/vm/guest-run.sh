#!/bin/bash
# Runs inside the test VM (started by /usr/local/sbin/csi-scst-run from the 9p share /mnt/in).
# Runs every scenario in /mnt/in/scenarios/*.sh in name order, each under its own timeout, and
# records per scenario in /mnt/out/scenarios/NAME/: log, rc, seconds, steps.tsv (from `step`),
# plus one line per scenario in /mnt/out/results.tsv: NAME<TAB>RC<TAB>SECONDS.
# After each scenario it checks that nothing was left behind (iSCSI sessions and node records,
# LIO objects, device-mapper devices, signatures on the scratch disks, mapped RBDs, Ceph or tgt
# daemons, extra mounts); a leak fails the scenario and is cleaned up so the next one starts clean.
set -uo pipefail

IN=/mnt/in
OUT=/mnt/out
export CSI_SCST_GUEST=1 CSI_SCST_IN=$IN CSI_SCST_OUT=$OUT CSI_SCST_LIB=$IN/lib
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
# shellcheck source=/dev/null
. "$IN/lib/guest-lib.sh"
# shellcheck source=/dev/null
. "$IN/lib/lio.sh"

scenario_timeout=900
# shellcheck source=/dev/null
[ -f "$IN/harness.env" ] && . "$IN/harness.env"   # CSI_SCST_SCENARIO_TIMEOUT, written by run.sh
scenario_timeout=${CSI_SCST_SCENARIO_TIMEOUT:-$scenario_timeout}

t_start=$(vm_now)
echo "INFO guest-run: kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s"

# Scratch disks: run-vm.sh gives them serials csi-disk1, csi-disk2, ...
udevadm settle --timeout=30 || true
n=0
for link in /dev/disk/by-id/virtio-csi-disk*; do
    [ -e "$link" ] || continue
    n=$((n + 1))
    export "CSI_SCST_DISK$n=$(readlink -f "$link")"
done
export CSI_SCST_DISK_COUNT=$n
echo "INFO guest-run: $n scratch disk(s): $(env | grep '^CSI_SCST_DISK[0-9]' | sort | tr '\n' ' ')"

# Binaries staged by run.sh from $CSI_SCST_BIN on the host: copied to the local disk (faster
# than exec over 9p, and exec bits are ours).
if [ -d "$IN/bin" ]; then
    mkdir -p /opt/csi-scst/bin
    cp -a "$IN/bin/." /opt/csi-scst/bin/
    chmod -R u+rwX /opt/csi-scst/bin
    export CSI_SCST_BIN=/opt/csi-scst/bin
    export PATH="$CSI_SCST_BIN:$PATH"
    echo "INFO guest-run: binaries in $CSI_SCST_BIN: $(ls "$CSI_SCST_BIN" | tr '\n' ' ')"
else
    export CSI_SCST_BIN=
fi

# iscsid: socket-activated in the image; start it now so no scenario pays for it.
t=$(vm_now)
if systemctl start iscsid.service; then
    echo "INFO guest-run: iscsid started in $(vm_since "$t")s"
else
    echo "INFO guest-run: WARNING: systemctl start iscsid failed"
fi

# ---- leak check -----------------------------------------------------------------------------
leaks() {
    local d out
    out=$(iscsiadm -m session 2>/dev/null) && [ -n "$out" ] && printf 'iscsi session: %s\n' "$out"
    for d in /etc/iscsi/nodes/* /var/lib/iscsi/nodes/*; do
        [ -e "$d" ] && echo "iscsi node record: ${d##*/}"
    done
    for d in /etc/iscsi/send_targets/* /var/lib/iscsi/send_targets/*; do
        [ -e "$d" ] && echo "iscsi discovery record: ${d##*/}"
    done
    lio_list
    out=$(dmsetup ls 2>/dev/null | grep -v '^No devices found') && [ -n "$out" ] && printf 'dm device: %s\n' "$out"
    for d in $(env | sed -n 's/^CSI_SCST_DISK[0-9][0-9]*=//p'); do
        out=$(wipefs -n "$d" 2>/dev/null | tail -n +2) && [ -n "$out" ] && echo "signature on $d: $out"
    done
    for d in /sys/bus/rbd/devices/*; do [ -e "$d" ] && echo "mapped rbd: ${d##*/}"; done
    for d in ceph-mon ceph-mgr ceph-osd tgtd; do   # pgrep rejects patterns over 15 characters
        out=$(pgrep -a -x "$d") && printf 'daemon: %s\n' "$out"
    done
    out=$(findmnt -rn -o TARGET | grep -Ev '^/($|proc|sys|dev|run|tmp|mnt/in$|mnt/out$)' | grep -Ev '^/(proc|sys|dev|run)/') \
        && [ -n "$out" ] && printf 'mount: %s\n' "$out"
    return 0
}

force_cleanup() {
    local d pid
    for d in $(findmnt -rn -o TARGET | grep -Ev '^/($|proc|sys|dev|run|tmp|mnt/in$|mnt/out$)' | grep -Ev '^/(proc|sys|dev|run)/' | sort -r); do
        umount -l "$d" 2>/dev/null || true
    done
    iscsiadm -m node -U all >/dev/null 2>&1 || true
    iscsiadm -m node -o delete >/dev/null 2>&1 || true
    iscsiadm -m discoverydb -o delete >/dev/null 2>&1 || true
    rm -rf /etc/iscsi/nodes/* /etc/iscsi/send_targets/* /var/lib/iscsi/nodes/* /var/lib/iscsi/send_targets/*
    # With single_major (krbd's default) /sys/bus/rbd/remove answers EINVAL: remove_single_major it is.
    # Before the Ceph daemons are killed: I/O to a mapping of a dead cluster hangs (and the disk scans after).
    for d in /sys/bus/rbd/devices/*; do
        [ -e "$d" ] || continue
        echo "${d##*/} force" > /sys/bus/rbd/remove_single_major 2>/dev/null || echo "${d##*/} force" > /sys/bus/rbd/remove 2>/dev/null
    done
    for d in ceph-mon ceph-mgr ceph-osd tgtd; do
        for pid in $(pgrep -x "$d"); do kill -9 "$pid" 2>/dev/null || true; done
    done
    lio_clear_all
    for d in $(env | sed -n 's/^CSI_SCST_DISK[0-9][0-9]*=//p'); do vm_wipe_disk "$d"; done
    dmsetup remove_all -f >/dev/null 2>&1 || true
    for d in $(env | sed -n 's/^CSI_SCST_DISK[0-9][0-9]*=//p'); do wipefs -a -q "$d" 2>/dev/null || true; done
    return 0
}

# ---- scenarios --------------------------------------------------------------------------------
mkdir -p "$OUT/scenarios"
: > "$OUT/results.tsv"
ran=0
failed=0
for script in "$IN"/scenarios/*.sh; do
    [ -f "$script" ] || continue
    name=$(basename "$script" .sh)
    res="$OUT/scenarios/$name"
    mkdir -p "$res"
    : > "$res/steps.tsv"
    limit=$(sed -n '1,30s/^# vm-timeout: *\([0-9][0-9]*\).*/\1/p' "$script" | head -n1)
    limit=${limit:-$scenario_timeout}
    work="/var/tmp/csi-scst/$name"
    rm -rf "$work"; mkdir -p "$work"
    echo "INFO scenario $name: start (timeout ${limit}s)"
    t=$(vm_now)
    (
        cd "$work" || exit 1
        export CSI_SCST_SCENARIO="$name" CSI_SCST_RESULTS="$res" CSI_SCST_WORK="$work"
        exec timeout --kill-after=15 "$limit" bash "$script"
    ) < /dev/null 2>&1 | tee "$res/log" | grep --line-buffered -E '^(PASS|FAIL|SKIP|INFO) '
    rc=${PIPESTATUS[0]}
    secs=$(vm_since "$t")
    [ "$rc" -eq 124 ] && echo "FAIL scenario timed out after ${limit}s" | tee -a "$res/log"
    left=$(leaks)
    if [ -n "$left" ]; then
        {
            echo "FAIL left behind after the scenario:"
            printf '%s\n' "$left" | sed 's/^/    /'
        } | tee -a "$res/log"
        [ "$rc" -eq 0 ] && rc=99
        force_cleanup
        left=$(leaks)
        [ -n "$left" ] && printf 'INFO still left after forced cleanup:\n%s\n' "$left" | tee -a "$res/log"
    fi
    echo "$rc" > "$res/rc"
    echo "$secs" > "$res/seconds"
    printf '%s\t%s\t%s\n' "$name" "$rc" "$secs" >> "$OUT/results.tsv"
    ran=$((ran + 1))
    if [ "$rc" -eq 0 ]; then
        echo "INFO scenario $name: PASS in ${secs}s"
    else
        failed=$((failed + 1))
        echo "INFO scenario $name: FAIL (rc=$rc) in ${secs}s"
    fi
done

echo "INFO guest-run: $ran scenario(s), $failed failed, $(vm_since "$t_start")s"
[ "$ran" -gt 0 ] && [ "$failed" -eq 0 ]
