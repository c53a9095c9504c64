#!/bin/bash
# vm-timeout: 1200
# Access control through the real roles (target on LIO, controller, two node plugins, node b being a
# second initiator identity through its own open-iscsi iface):
#   - an initiator the volume was not published to cannot log in (plugin and raw iscsiadm);
#   - ControllerUnpublishVolume fences: the initiator's session is closed and its I/O fails;
#   - a read-only publish refuses writes on the target side;
#   - chap=static with mutual CHAP: no credentials, a wrong secret, a wrong target secret are refused;
#     the right ones log in;
#   - chap=generated: the controller makes a per-volume mutual pair in a Kubernetes Secret (a small
#     stand-in API server inside the VM, lib/fake-kube-api.py), the node logs in with it, a wrong one is
#     refused, DeleteVolume removes the Secret.
set -euo pipefail
. "$CSI_SCST_LIB/guest-lib.sh"
. "$CSI_SCST_LIB/lio.sh"
. "$CSI_SCST_LIB/driver.sh"
. "$CSI_SCST_LIB/e2e.sh"

vm_require_bin csi-scst
vg=e2evg
iface_b=csi-node-b
ini_b=iqn.2026-11.io.csi-scst.vm:node-b
kube=$CSI_SCST_WORK/kube
ns=csi-scst
blk="--access-type block"
chap_secrets=(--secret username=vm-user-in --secret password=in-secret-123456 --secret username_in=vm-target-out --secret password_in=out-secret-654321)

cleanup() {
    set +e
    drv_stop_all
    [ -f "$kube/pid" ] && kill "$(cat "$kube/pid")" 2>/dev/null
    e2e_force_cleanup
    iscsiadm -m iface -I "$iface_b" -o delete >/dev/null 2>&1
    vgremove -ff -y "$vg" >/dev/null 2>&1
    vm_wipe_disk "$CSI_SCST_DISK1"
}
trap cleanup EXIT

setup() {
    lio_load
    modprobe iscsi_tcp
    pvcreate -q -y "$CSI_SCST_DISK1" >/dev/null
    vgcreate -q "$vg" "$CSI_SCST_DISK1" >/dev/null
    lvcreate -q -y --type thin-pool -n tp -L 1G "$vg" >/dev/null
    drv_init
    mkdir -p "$kube"
    python3 "$CSI_SCST_LIB/fake-kube-api.py" "$kube" "$ns" > "$CSI_SCST_RESULTS/fake-kube-api.log" 2>&1 &
    echo $! > "$kube/pid"
    wait_for 30 test -s "$kube/port"
    echo "stand-in Kubernetes API on 127.0.0.1:$(cat "$kube/port")"
}
step "setup: LIO, iscsi_tcp, thin pool, TLS material, the stand-in Kubernetes API" setup

start_roles() {
    drv_target target lio --pool "name=thin,backend=lvm,vg=$vg,thinpool=tp" &
    drv_controller --default-pool thin --kubeconfig "$kube/kubeconfig" --namespace "$ns" &
    drv_node a &
    drv_node b --iface "$iface_b" --initiator-name "$ini_b" &
    drv_wait_jobs
}
step "start target (LIO), controller (with a kubeconfig), node a and node b (iface $iface_b)" start_roles

# ---- an initiator that was not published --------------------------------------------------------
not_published() {
    local out iqn rc=0
    # replacementTimeout (a StorageClass parameter, carried to the node in the volume context): the fence
    # below fails the session's I/O after 15 s instead of the plugin's default 120 s.
    vol_create priv "$blk" --size 32Mi --param replacementTimeout=15
    [ "$(vol_ctx priv csi-scst.io/replacement-timeout)" = 15 ]
    vol_publish priv a
    # Node b gets node a's publish context (as if it had been published there) and tries to log in.
    cp "$E2E/priv.a.pub.json" "$E2E/priv.b.pub.json"
    out=$(vol_stage priv b 2>&1) && { echo "node b staged a volume published only to node a"; return 1; }
    echo "node b: $out"
    grep -q PermissionDenied <<<"$out"
    iqn=$(pub_ctx priv a csi-scst.io/iqn)
    not has_session_iqn "$iqn"
    vol_unstage priv b
    # Raw open-iscsi through node b's iface: LIO refuses the login (authorization failure, 24).
    iscsiadm -m node -o new -T "$iqn" -p "$DRV_PORTAL" -I "$iface_b" >/dev/null
    iscsiadm -m node -T "$iqn" -p "$DRV_PORTAL" -I "$iface_b" -o update -n node.session.initial_login_retry_max -v 0
    iscsiadm -m node -T "$iqn" -p "$DRV_PORTAL" -I "$iface_b" --login || rc=$?
    iscsiadm -m node -T "$iqn" -p "$DRV_PORTAL" -I "$iface_b" -o delete
    echo "iscsiadm --login as $ini_b: exit $rc"
    [ "$rc" -eq 24 ]
    not has_session_iqn "$iqn"
    # The published node logs in.
    vol_stage priv a
    vol_node_publish priv a
    check_staged priv a
    iscsiadm -m node -T "$iqn" -p "$DRV_PORTAL" -I default | grep -x 'node.session.timeo.replacement_timeout = 15'
    write_block priv a 0 2
}
step "an initiator the volume was not published to cannot log in (plugin: PERMISSION_DENIED; iscsiadm: 24)" not_published

fence() {
    local iqn dev stopped=$CSI_SCST_WORK/writer.stopped
    iqn=$(pub_ctx priv a csi-scst.io/iqn)
    dev=$(target_path priv a)
    rm -f "$stopped"
    ( while dd if=/dev/zero of="$dev" bs=64k count=16 seek=256 oflag=direct status=none 2>/dev/null; do :; done
      touch "$stopped" ) &
    sleep 2
    [ ! -e "$stopped" ]
    # The attacher unpublishes (e.g. the node was declared lost) while the node still writes.
    vol_unpublish priv a
    test ! -e "$LIO_ROOT/iscsi/$iqn/tpgt_1/acls/$(vm_initiator_name)"
    wait_for 120 test -e "$stopped"
    echo "the writer's I/O failed after the fence; session: $(iscsiadm -m session -P 1 | sed -n 's/^[[:space:]]*iSCSI Session State: //p' | head -n1)"
    # What was written before the fence is on the LV.
    cmp <(head -c $((2 << 20)) "$E2E/priv.blk.0") <(dd if="/dev/$vg/$(vol_lv "$(vol_id priv)")" bs=1M count=2 iflag=direct status=none)
    # Kubelet cleans up later: unpublish and unstage still succeed on the fenced node.
    vol_node_unpublish priv a
    vol_unstage priv a
    not has_session_iqn "$iqn"
    ctl delete-volume --volume-id "$(vol_id priv)" >/dev/null
}
step "ControllerUnpublishVolume fences: ACL removed, the session's I/O fails; the node still unstages cleanly" fence

read_only() {
    local out
    vol_create ro "$blk" --size 32Mi
    vol_publish ro a --readonly
    vol_stage ro a
    vol_node_publish ro a --readonly
    check_staged ro a
    [ "$(cat "$LIO_ROOT/iscsi/$(pub_ctx ro a csi-scst.io/iqn)/tpgt_1/acls/$(vm_initiator_name)/lun_0/write_protect")" = 1 ]
    dd if="$(target_path ro a)" of=/dev/null bs=1M count=4 iflag=direct status=none
    if out=$(dd if=/dev/zero of="$(readlink -f "$(vol_bypath ro a)")" bs=4k count=1 oflag=direct 2>&1); then
        echo "a write through the read-only LUN succeeded" >&2; return 1
    fi
    echo "write refused: $out"
    vol_detach ro a
    ctl delete-volume --volume-id "$(vol_id ro)" >/dev/null
}
step "read-only ControllerPublishVolume: write_protect on the ACL, writes refused by the target" read_only

# ---- CHAP ---------------------------------------------------------------------------------------
chap_static() {
    local out iqn
    vol_create chap "--fs-type ext4" --size 64Mi --param chap=static "${chap_secrets[@]}"
    [ "$(vol_ctx chap csi-scst.io/chap)" = mutual ]
    # No secret anywhere in what the controller hands out.
    not grep -q secret-123456 "$E2E/chap.json"
    vol_publish chap a
    not grep -q secret "$E2E/chap.a.pub.json"
    iqn=$(pub_ctx chap a csi-scst.io/iqn)
    [ "$(cat "$LIO_ROOT/iscsi/$iqn/tpgt_1/attrib/authentication")" = 1 ]
    out=$(vol_stage chap a 2>&1) && { echo "staged without credentials"; return 1; }
    echo "no credentials: $out" | head -n 2
    grep -q FailedPrecondition <<<"$out"
    out=$(vol_stage chap a --secret username=vm-user-in --secret password=wrong-secret-0000 --secret username_in=vm-target-out --secret password_in=out-secret-654321 2>&1) \
        && { echo "staged with a wrong secret"; return 1; }
    echo "wrong secret: $out" | head -n 2
    grep -q PermissionDenied <<<"$out"
    not has_session_iqn "$iqn"
    vol_unstage chap a
    out=$(vol_stage chap a --secret username=vm-user-in --secret password=in-secret-123456 --secret username_in=vm-target-out --secret password_in=wrong-secret-0000 2>&1) \
        && { echo "staged although the target proved a wrong secret (mutual CHAP)"; return 1; }
    echo "wrong target secret: $out" | head -n 2
    not has_session_iqn "$iqn"
    vol_unstage chap a
    vol_stage chap a "${chap_secrets[@]}"
    vol_node_publish chap a
    check_staged chap a ext4
    iscsiadm -m node -T "$iqn" -p "$DRV_PORTAL" -I default | grep -x 'node.session.auth.authmethod = CHAP'
    write_file chap a data 4
    verify_file chap a data
    not grep -rq 'in-secret-123456\|out-secret-654321' "$CSI_SCST_RESULTS"/*.log
    vol_detach chap a
    ctl delete-volume --volume-id "$(vol_id chap)" >/dev/null
}
step "chap=static, mutual: refused without credentials, with a wrong secret, with a wrong target secret; logs in with the right ones" chap_static

secret_value() { jq -r --arg k "$2" '.data[$k]' "$kube/secrets/$1.json" | base64 -d; }
chap_generated() {
    local out iqn key sec=pv-gen-chap
    vol_create gen "--fs-type ext4" --size 64Mi --param chap=generated --param csi.storage.k8s.io/pv/name=pv-gen \
        --param csi.storage.k8s.io/pvc/name=data --param csi.storage.k8s.io/pvc/namespace=default
    [ "$(vol_ctx gen csi-scst.io/chap)" = mutual ]
    key=$(vid_key "$(vol_id gen)")
    test -f "$kube/secrets/$sec.json"
    jq -c '.metadata.labels' "$kube/secrets/$sec.json"
    [ "$(jq -r '.metadata.labels["csi-scst.io/volume-key"]' "$kube/secrets/$sec.json")" = "$key" ]
    [ "$(secret_value "$sec" username)" = "csi-$DRV_INSTANCE-$key-in" ]
    [ "$(secret_value "$sec" password | wc -c)" -eq 24 ]
    [ "$(secret_value "$sec" password)" != "$(secret_value "$sec" password_in)" ]
    not grep -rq "$(secret_value "$sec" password)" "$E2E/gen.json" "$CSI_SCST_RESULTS"/*.log
    vol_publish gen a
    iqn=$(pub_ctx gen a csi-scst.io/iqn)
    out=$(vol_stage gen a --secret "username=$(secret_value "$sec" username)" --secret password=not-the-generated-one \
        --secret "username_in=$(secret_value "$sec" username_in)" --secret "password_in=$(secret_value "$sec" password_in)" 2>&1) \
        && { echo "staged with a wrong secret"; return 1; }
    grep -q PermissionDenied <<<"$out"
    vol_unstage gen a
    # Kubelet reads the Secret the StorageClass names (node-stage-secret-name: ${pv.name}-chap).
    vol_stage gen a --secret "username=$(secret_value "$sec" username)" --secret "password=$(secret_value "$sec" password)" \
        --secret "username_in=$(secret_value "$sec" username_in)" --secret "password_in=$(secret_value "$sec" password_in)"
    vol_node_publish gen a
    check_staged gen a ext4
    write_file gen a data 2
    vol_detach gen a
    ctl delete-volume --volume-id "$(vol_id gen)" >/dev/null
    test ! -e "$kube/secrets/$sec.json"
    grep "DELETE /api/v1/namespaces/$ns/secrets/$sec" "$CSI_SCST_RESULTS/fake-kube-api.log"
}
step "chap=generated: a per-volume mutual pair in Secret <pv>-chap; a wrong secret is refused, the generated one logs in; DeleteVolume removes the Secret" chap_generated

step "nothing left behind" nothing_left

stop_roles() {
    drv_stop b; drv_stop a; drv_stop controller; drv_stop target
    kill "$(cat "$kube/pid")"; rm -f "$kube/pid"
    iscsiadm -m iface -I "$iface_b" -o delete
}
step "stop every role and the stand-in API; remove iface $iface_b" stop_roles

teardown() { vgremove -q -y "$vg" >/dev/null; pvremove -q -y "$CSI_SCST_DISK1" >/dev/null; wipefs -a -q "$CSI_SCST_DISK1"; }
step "teardown: VG" teardown
