#!/bin/bash
# vm-timeout: 1500
# Disruption with the real roles (target on LIO over a thin pool, controller, node):
#   - the target engine is SIGKILLed at a fault point mid-CreateVolume (CSI_SCST_FAULT_POINT); after a
#     restart the retried CreateVolume converges on one LV and one export;
#   - a restarted target reconciles without touching live exports;
#   - the LIO configuration is wiped under live sessions (while the engine runs: its periodic reconcile
#     restores every export; and as a reboot would: engine killed, configfs emptied, LIO modules
#     unloaded, engine started again), the initiator reconnects by itself and the data is intact;
#     an export of this instance that no state wants is removed, another instance's is left alone;
#   - the node plugin is SIGKILLed with volumes mounted and restarted; the mounts keep working and
#     unstage cleanly.
# CSI_SCST_VM_FULL=1 also kills the engine at every other fault point of EnsureVolume.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"
. "$CSI_SCST_LIB/driver.sh"
. "$CSI_SCST_LIB/e2e.sh"

vm_require_bin csi-scst
vg=e2evg
metrics_port=9851
foreign=$DRV_IQN_PREFIX:other.00000000000000ff
orphan_key=00000000000000fe
orphan=$DRV_IQN_PREFIX:$DRV_INSTANCE.$orphan_key

cleanup() {
    set +e
    drv_stop_all
    e2e_force_cleanup
    vgremove -ff -y "$vg" >/dev/null 2>&1
    vm_wipe_disk "$CSI_SCST_DISK1"
}
trap cleanup EXIT

start_target() { drv_target target lio --pool "name=thin,backend=lvm,vg=$vg,thinpool=tp" --reconcile-interval 00:00:10 --metrics-address "127.0.0.1:$metrics_port"; }
metrics() { exec 3<>"/dev/tcp/127.0.0.1/$1"; printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$1" >&3; cat <&3; exec 3<&-; }
metric() { metrics "$metrics_port" | awk -v m="$1" '$1 == m { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
startup_reconciled() { [ "$(metric 'csi_scst_engine_reconcile_runs_total{trigger="startup"}')" = 1 ]; }
lv_count() { lvs --noheadings -o lv_name "$vg" | grep -c " csi-$DRV_INSTANCE-$1" || true; }

setup() {
    lio_load
    modprobe iscsi_tcp
    pvcreate -q -y "$CSI_SCST_DISK1" >/dev/null
    vgcreate -q "$vg" "$CSI_SCST_DISK1" >/dev/null
    lvcreate -q -y --type thin-pool -n tp -L 1G "$vg" >/dev/null
    drv_init
}
step "setup: LIO, iscsi_tcp, thin pool, TLS material" setup

start_roles() { start_target & drv_controller --default-pool thin & drv_node a & drv_wait_jobs; }
step "start target (LIO, reconcile every 10 s), controller and node a" start_roles

# ---- kill -9 mid-CreateVolume -------------------------------------------------------------------
# crash_create NAME POINT: the engine dies at POINT during CreateVolume; restarted, the retry converges.
crash_create() {
    local n=$1 point=$2 out rc=0 key
    drv_stop target
    CSI_SCST_FAULT_POINT=$point start_target
    out=$(DRV_RETRY_UNAVAILABLE=0 ctl create-volume --name "$n" --access-type block --size 32Mi 2>&1) || rc=$?
    echo "CreateVolume while the engine dies at $point: exit $rc: $out"
    [ "$rc" -ne 0 ]
    wait_for 30 sh -c "! kill -0 $(drv_pid target)"
    grep -q "fault point $point reached" "$CSI_SCST_RESULTS/target.log"
    rm -f "$DRV/target.pid"
    echo "left by the crash: $(ls "$DRV/state/volumes" 2>/dev/null | tr '\n' ' ') LVs: $(lvs --noheadings -o lv_name "$vg" | tr -s ' \n' ' ')"
    start_target
    vol_create "$n" "--access-type block" --size 32Mi
    key=$(vid_key "$(vol_id "$n")")
    [ "$(lv_count "$key")" -eq 1 ]
    test -d "$LIO_ROOT/iscsi/$(vol_iqn "$(vol_id "$n")")"
    # The volume is whole: it attaches, carries its serial and takes data.
    vol_attach "$n" a
    check_staged "$n" a
    write_block "$n" a 0 2
    vol_detach "$n" a
    ctl delete-volume --volume-id "$(vol_id "$n")" >/dev/null
    [ "$(lv_count "$key")" -eq 0 ]
}
step "kill -9 of the engine mid-CreateVolume (ensure-volume:after-backend-create), restart, retry: one LV, one export" \
    crash_create crash1 ensure-volume:after-backend-create
if vm_full_matrix; then
    step "kill -9 at ensure-volume:after-record, retry" crash_create crash2 ensure-volume:after-record
    step "kill -9 at ensure-volume:after-attach, retry" crash_create crash3 ensure-volume:after-attach
    step "kill -9 at ensure-volume:after-export, retry" crash_create crash4 ensure-volume:after-export
fi

# ---- live volumes for the rest --------------------------------------------------------------------
live_volumes() {
    vol_create fsvol "--fs-type ext4" --size 64Mi
    vol_attach fsvol a
    check_staged fsvol a ext4
    write_file fsvol a before 4
    vol_create blkvol "--access-type block" --size 32Mi
    vol_attach blkvol a
    write_block blkvol a 0 4
}
step "two live volumes on node a: ext4 (mounted, 4 MiB written) and block (4 MiB written)" live_volumes

restart_target() {
    local before after
    before=$(metric csi_scst_engine_reconcile_repaired_total)
    drv_stop target KILL
    start_target
    wait_for 60 startup_reconciled
    after=$(metric csi_scst_engine_reconcile_repaired_total)
    echo "repaired before the kill: ${before:-?}, after the restart: ${after:-0}"
    [ "${after:-0}" = 0 ]
    [ "$(metric csi_scst_engine_exports)" = 2 ]
    wait_for 30 metric_is csi_scst_engine_sessions 2
    verify_file fsvol a before
    verify_block blkvol a 0 4
    ctl list-volumes | jq -c '[.entries[] | {id: .volume.volumeId, abnormal: (.status.volumeCondition.abnormal // false)}]'
}
step "kill -9 and restart of the engine: start-up reconcile finds both exports intact (nothing repaired), I/O goes on" restart_target

session_state() { iscsiadm -m session -P 1 2>/dev/null | sed -n 's/^[[:space:]]*iSCSI Session State: //p' | sort | uniq -c | tr -s ' \n' ' '; }
all_logged_in() { [ "$(iscsiadm -m session -P 1 | grep -c 'iSCSI Session State: LOGGED_IN')" -eq 2 ]; }

wipe_live() {
    local t0
    # Another instance's target and an orphan of ours (no state wants it).
    lvcreate -q -y --type thin -n other -V 16M --thinpool tp "$vg" >/dev/null
    lvcreate -q -y --type thin -n orphan -V 16M --thinpool tp "$vg" >/dev/null
    lio_clear_all
    lio_target "$foreign" "$(lio_backstore_block csi_other_ff "/dev/$vg/other" CS00000000000000ff)" iqn.2026-11.io.csi-scst.vm:nobody
    lio_target "$orphan" "$(lio_backstore_block "csi_${DRV_INSTANCE}_$orphan_key" "/dev/$vg/orphan" "CS$orphan_key")" iqn.2026-11.io.csi-scst.vm:nobody
    echo "after the wipe:"; lio_list
    t0=$(date +%s)
    # Reads and writes queue while the target is gone (replacement timeout 120 s) and complete after.
    dd if=/dev/urandom of="$(target_path fsvol a)/during" bs=1M count=1 conv=fsync status=none &
    local writer=$!
    wait_for 60 sh -c "iscsiadm -m session -P 1 | grep -q 'iSCSI Session State: FAILED'" || true
    echo "sessions: $(session_state)"
    wait_for 120 test -d "$LIO_ROOT/iscsi/$(vol_iqn "$(vol_id fsvol)")"
    wait_for 120 test -d "$LIO_ROOT/iscsi/$(vol_iqn "$(vol_id blkvol)")"
    wait_for 120 all_logged_in
    wait "$writer"
    echo "exports restored by the periodic reconcile and sessions back after $(( $(date +%s) - t0 ))s: $(session_state)"
    check_staged fsvol a ext4
    check_staged blkvol a
    verify_file fsvol a before
    verify_block blkvol a 0 4
    write_block blkvol a 8 2
    # The orphan is gone, the other instance's target untouched.
    wait_for 60 test ! -e "$LIO_ROOT/iscsi/$orphan"
    test -d "$LIO_ROOT/iscsi/$foreign"
    [ "$(metric csi_scst_engine_reconcile_orphans_removed_total)" -ge 1 ]
    [ "$(metric csi_scst_engine_reconcile_repaired_total)" -ge 2 ]
    lio_target_delete "$foreign"; lio_backstore_delete csi_other_ff
    lvremove -q -y "$vg/other" "$vg/orphan" >/dev/null
}
step "LIO configuration wiped under live sessions: the running engine's reconcile restores both exports, the initiator reconnects, data intact, orphan removed, foreign target kept" wipe_live

reboot_target() {
    local t0 m
    drv_stop target KILL
    lio_clear_all
    rmdir "$LIO_ROOT/iscsi" 2>/dev/null || true
    for m in iscsi_target_mod target_core_file target_core_iblock target_core_pscsi target_core_user target_core_mod; do
        lsmod | grep -q "^$m " && rmmod "$m"
    done
    lsmod | grep -E '^(target_core|iscsi_target)' && { echo "LIO modules still loaded" >&2; return 1; }
    test ! -d "$LIO_ROOT"
    echo "LIO unloaded; sessions: $(session_state)"
    t0=$(date +%s)
    start_target
    wait_for 120 all_logged_in
    echo "engine started, modules loaded, exports restored, sessions back after $(( $(date +%s) - t0 ))s: $(session_state)"
    lsmod | grep -E '^(target_core_mod|iscsi_target_mod) '
    check_staged fsvol a ext4
    check_staged blkvol a
    verify_file fsvol a before
    verify_block blkvol a 0 4
    verify_block blkvol a 8 2
}
step "as a reboot would: engine killed, LIO emptied and unloaded, engine started: start-up reconcile restores both exports, data intact" reboot_target

restart_node() {
    drv_stop a KILL
    echo written-while-the-plugin-was-down > "$(target_path fsvol a)/down"
    drv_node a
    grep -q written-while-the-plugin-was-down "$(target_path fsvol a)/down"
    check_staged fsvol a ext4
    check_staged blkvol a
    verify_file fsvol a before
    verify_block blkvol a 8 2
    # Stage and publish again after the restart (kubelet's reconstruction): OK, nothing changes.
    vol_stage fsvol a
    vol_node_publish fsvol a
    [ "$(findmnt -rn -o TARGET | grep -c "^$(target_path fsvol a)$")" -eq 1 ]
}
step "kill -9 and restart of the node plugin with volumes mounted: mounts and I/O unaffected, stage/publish again OK" restart_node

detach_all() {
    vol_detach fsvol a
    vol_detach blkvol a
    ctl delete-volume --volume-id "$(vol_id fsvol)" >/dev/null
    ctl delete-volume --volume-id "$(vol_id blkvol)" >/dev/null
}
step "unpublish, unstage, ControllerUnpublish and DeleteVolume after the restarts" detach_all

step "nothing left behind" nothing_left

stop_roles() { drv_stop a; drv_stop controller; drv_stop target; }
step "stop every role" stop_roles

teardown() { vgremove -q -y "$vg" >/dev/null; pvremove -q -y "$CSI_SCST_DISK1" >/dev/null; wipefs -a -q "$CSI_SCST_DISK1"; }
step "teardown: VG" teardown
