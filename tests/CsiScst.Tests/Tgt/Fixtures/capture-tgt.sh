#!/bin/bash
# Records REAL tgtadm output for the tgt engine's parser tests (tests/CsiScst.Tests/Tgt).
# Runs on the host as root: starts a private tgtd (its own control port and a 127.0.0.x portal),
# builds the states the engine must read (targets with LUNs, name and address ACLs, incoming and
# outgoing accounts, a live session held open by qemu-io over libiscsi), records every command's
# stdout, stderr and exit code as NAME.stdout / NAME.stderr / NAME.rc next to this script, and
# tears everything down again (targets, accounts, the daemon, its socket files).
#
#   tests/CsiScst.Tests/Tgt/Fixtures/capture-tgt.sh
#
# Needs: tgt, libiscsi-bin, qemu-utils + qemu-block-extra (installed when missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${CAPTURE_TGT_CONTROL_PORT:-4711}
addr=${CAPTURE_TGT_ADDRESS:-127.0.0.211}
work=$(mktemp -d /tmp/capture-tgt.XXXXXX)

need() { command -v "$1" >/dev/null 2>&1 || { apt-get install -y --no-install-recommends "$2" >/dev/null; }; }
need tgtd tgt
need iscsi-inq libiscsi-bin
need qemu-io qemu-utils
[ -e /usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so ] || apt-get install -y --no-install-recommends qemu-block-extra >/dev/null

qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
    for tid in $(tgtadm -C "$port" --lld iscsi --mode target --op show 2>/dev/null | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
        tgtadm -C "$port" --lld iscsi --mode target --op delete --force --tid "$tid" || true
    done
    for user in $(tgtadm -C "$port" --lld iscsi --mode account --op show 2>/dev/null | sed -n '2,$p'); do
        tgtadm -C "$port" --lld iscsi --mode account --op delete --user "$user" || true
    done
    tgtadm -C "$port" --mode system --op delete 2>/dev/null || true
    for _ in $(seq 50); do pgrep -f "tgtd -f -C $port " >/dev/null || break; sleep 0.1; done
    rm -f "/var/run/tgtd/socket.$port" "/var/run/tgtd/socket.$port.lock"
    rm -rf "$work"
}
trap cleanup EXIT

# cap NAME CMD...: runs CMD, keeps stdout, stderr and the exit code; never fails.
cap() {
    local name=$1; shift
    local rc=0
    "$@" > "$here/$name.stdout" 2> "$here/$name.stderr" || rc=$?
    echo "$rc" > "$here/$name.rc"
    [ -s "$here/$name.stderr" ] || rm -f "$here/$name.stderr"
    echo "capture $name: exit $rc"
}
adm() { tgtadm -C "$port" --lld iscsi "$@"; }

rm -f "$here"/*.stdout "$here"/*.stderr "$here"/*.rc
tgtd -f -C "$port" --iscsi "portal=$addr:3260" > "$work/tgtd.log" 2>&1 &
for _ in $(seq 50); do adm --mode target --op show >/dev/null 2>&1 && break; sleep 0.1; done

iqn1=iqn.2026-11.io.csi-scst:cap.00000000000000a1
iqn2=iqn.2026-11.io.csi-scst:cap.00000000000000b2
other=iqn.2003-01.org.example:not-ours
ini1=iqn.2026-01.test.capture:ini1
ini2=iqn.2026-01.test.capture:ini2
truncate -s 64M "$work/a1.img"; truncate -s 32M "$work/b2.img"; truncate -s 16M "$work/other.img"

cap system-show tgtadm -C "$port" --mode system --op show
cap target-show-empty adm --mode target --op show
cap account-show-empty adm --mode account --op show
cap portal-show adm --mode portal --op show

adm --mode target --op new --tid 1 --targetname "$iqn1"
adm --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$work/a1.img" --bstype rdwr --bsoflags sync
adm --mode logicalunit --op update --tid 1 --lun 1 --params scsi_sn=CS00000000000000a1,thin_provisioning=1
adm --mode target --op bind --tid 1 --initiator-name "$ini1"
adm --mode target --op bind --tid 1 --initiator-name "$ini2"
adm --mode account --op new --user csi-cap-00000000000000a1-in --password capturesecret1
adm --mode account --op new --user csi-cap-00000000000000a1-out --password capturesecret2
adm --mode account --op bind --tid 1 --user csi-cap-00000000000000a1-in
adm --mode account --op bind --tid 1 --user csi-cap-00000000000000a1-out --outgoing

adm --mode target --op new --tid 3 --targetname "$iqn2"
adm --mode logicalunit --op new --tid 3 --lun 1 --backing-store "$work/b2.img" --bstype rdwr --blocksize 4096
adm --mode logicalunit --op update --tid 3 --lun 1 --params scsi_sn=CS00000000000000b2,readonly=1
adm --mode target --op bind --tid 3 --initiator-name "$ini1"

adm --mode target --op new --tid 7 --targetname "$other"
adm --mode logicalunit --op new --tid 7 --lun 1 --backing-store "$work/other.img"
adm --mode target --op bind --tid 7 --initiator-address ALL
adm --mode target --op bind --tid 7 --initiator-address 10.0.0.0/24

cap target-show-no-session adm --mode target --op show
cap target-show-tid1 adm --mode target --op show --tid 1
cap account-show adm --mode account --op show

# A live session: qemu-io logs in through libiscsi and waits on its stdin.
mkfifo "$work/in"
sleep 600 > "$work/in" &
sleeper=$!
printf 'capturesecret1' > "$work/secret"
qemu-io --object "secret,id=s0,file=$work/secret" \
    --image-opts "driver=iscsi,transport=tcp,portal=$addr:3260,target=$iqn1,lun=1,initiator-name=$ini1,user=csi-cap-00000000000000a1-in,password-secret=s0" \
    < "$work/in" > "$work/qemu.log" 2>&1 &
qemu_pid=$!
for _ in $(seq 100); do adm --mode conn --op show --tid 1 | grep -q Session && break; sleep 0.1; done
cap target-show-session adm --mode target --op show
cap conn-show-tid1 adm --mode conn --op show --tid 1
sid=$(adm --mode conn --op show --tid 1 | sed -n 's/^Session: \([0-9]*\)/\1/p' | head -1)
# Resize while the session is live: offline + path update re-opens the file and reads its new size.
truncate -s 96M "$work/a1.img"
cap lu-update-path adm --mode logicalunit --op update --tid 1 --lun 1 --params "online=0,path=$work/a1.img"
cap target-show-resized adm --mode target --op show --tid 1
# Fencing: drop the ACL, then close the connection; the initiator cannot log in again.
adm --mode target --op unbind --tid 1 --initiator-name "$ini1"
cap conn-delete adm --mode conn --op delete --tid 1 --sid "$sid" --cid 0
kill "$qemu_pid" "$sleeper" 2>/dev/null || true
qemu_pid=

# Error messages (exit code 22 + "tgtadm: <message>").
cap err-target-exists adm --mode target --op new --tid 1 --targetname "$iqn1"
cap err-target-name-exists adm --mode target --op new --tid 9 --targetname "$iqn1"
cap err-no-target adm --mode target --op show --tid 42
cap err-lun-exists adm --mode logicalunit --op new --tid 1 --lun 1 --backing-store "$work/a1.img"
cap err-no-lun adm --mode logicalunit --op delete --tid 1 --lun 5
cap err-acl-exists adm --mode target --op bind --tid 1 --initiator-name "$ini2"
cap err-no-acl adm --mode target --op unbind --tid 1 --initiator-name "$ini1"
cap err-account-exists adm --mode account --op new --user csi-cap-00000000000000a1-in --password x
cap err-no-account adm --mode account --op bind --tid 1 --user nobody
cap err-outgoing-exists adm --mode account --op bind --tid 1 --user csi-cap-00000000000000a1-in --outgoing
cap err-no-account-delete adm --mode account --op delete --user nobody
cap err-bad-path adm --mode logicalunit --op new --tid 1 --lun 2 --backing-store /nonexistent/file.img
cap err-no-conn adm --mode conn --op delete --tid 1 --sid 999 --cid 0
cap err-unbind-outgoing-none adm --mode account --op unbind --tid 3 --user csi-cap-00000000000000a1-out --outgoing
cap err-daemon-down tgtadm -C 4999 --lld iscsi --mode target --op show
tgtadm -V > "$here/tgtadm-version.txt" 2>&1 || true
echo "captured into $here"
