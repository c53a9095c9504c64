#!/usr/bin/env bash
# csi-scst quick start: the driver's real CSI flow on one Debian machine, with the embedded defaults
# (userspace tgt engine, file-backed volumes, everything on 127.0.0.1):
#   CreateVolume -> ControllerPublishVolume -> the LUN is visible over iSCSI on 127.0.0.1 to the
#   published initiator only -> ControllerUnpublishVolume -> DeleteVolume -> nothing left behind.
# It runs `csi-scst standalone` (controller, node and target engine in one process; the controller
# still reaches the engine through its gRPC API with mutual TLS) and drives it with `csi-scst client`,
# exactly as kubelet and the sidecars would. libiscsi's tools act as the initiator, so no kernel
# iSCSI support is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

work=${CSI_SCST_QUICKSTART_DIR:-/var/lib/csi-scst-quickstart}
portal_port=${CSI_SCST_QUICKSTART_PORT:-3260}
# tgtd's own control port for the quick start (tgtd accepts up to 32767), so a system tgtd is never touched.
tgt_control_port=${CSI_SCST_QUICKSTART_TGT_CONTROL_PORT:-23260}
socket=$work/csi.sock
initiator=iqn.2026-11.io.csi-scst:quickstart-initiator
stranger=iqn.2026-11.io.csi-scst:not-published
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\033[31mFAILED: %s\033[0m\n' "$*"; [ -f "$work/standalone.log" ] && tail -n 30 "$work/standalone.log"; exit 1; }

step "Installing tgt and libiscsi's initiator tools (apt, only what is missing)"
scripts/install-deps.sh quickstart

step "Building csi-scst"
dotnet build src/CsiScst -c Release -nologo -clp:ErrorsOnly -o artifacts/quickstart-bin >/dev/null
bin=$PWD/artifacts/quickstart-bin/csi-scst
client() { "$bin" client --endpoint "unix://$socket" "$@"; }

step "Starting csi-scst standalone (data in $work)"
rm -rf "$work"
mkdir -p "$work"
if (exec 3<>"/dev/tcp/127.0.0.1/$portal_port") 2>/dev/null; then
  fail "127.0.0.1:$portal_port is taken by another iSCSI target; set CSI_SCST_QUICKSTART_PORT to a free port"
fi
"$bin" standalone --endpoint "unix://$socket" --data-dir "$work" --node-id quickstart \
  --portal "127.0.0.1:$portal_port" --tgt-control-port "$tgt_control_port" \
  --metrics-address 127.0.0.1:9808 >"$work/standalone.log" 2>&1 &
pid=$!
cleanup() {
  kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  # Exports outlive the engine by design (a restart must not cut initiators off); the quick start's own
  # tgtd is stopped here, with whatever a failed run left on it.
  for tid in $(tgtadm -C "$tgt_control_port" --lld iscsi --mode target --op show 2>/dev/null | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
    tgtadm -C "$tgt_control_port" --lld iscsi --mode target --op delete --force --tid "$tid" >/dev/null 2>&1 || true
  done
  tgtadm -C "$tgt_control_port" --mode system --op delete >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 200); do [ -S "$socket" ] && break; kill -0 "$pid" 2>/dev/null || fail "csi-scst standalone exited"; sleep 0.1; done
[ -S "$socket" ] || fail "csi-scst standalone did not open $socket"
client plugin-info
client probe

missing() {
  printf '\n\033[33mThis build does not implement %s yet; the flow stops here.\033[0m\n' "$1"
  exit 1
}

step "CreateVolume: a 64 MiB file-backed volume"
set +e
volume_id=$(client create-volume --name quickstart-volume --size 64Mi --access-type block -o id)
status=$?
set -e
[ $status -eq 112 ] && missing "CreateVolume (the target engine and controller)"
[ $status -eq 0 ] || fail "CreateVolume exited with $status"
echo "volume id: $volume_id"

step "ControllerPublishVolume: let only $initiator in"
mapfile -t context < <(client publish --volume-id "$volume_id" --node-id "quickstart/$initiator" --access-type block -o id)
printf '  %s\n' "${context[@]}"
iqn=""; lun=""
for kv in "${context[@]}"; do
  case "${kv%%=*}" in
    *iqn) iqn=${kv#*=} ;;
    *lun) lun=${kv#*=} ;;
  esac
done
[ -n "$iqn" ] && [ -n "$lun" ] || fail "publish_context has no target IQN and LUN"
url="iscsi://127.0.0.1:$portal_port/$iqn/$lun"

step "The LUN over iSCSI on 127.0.0.1, seen by the published initiator"
iscsi-inq -i "$initiator" "$url" | sed -n '1,12p'
capacity=$(iscsi-readcapacity16 -i "$initiator" "$url")
echo "$capacity" | sed -n '1,6p'
echo "$capacity" | grep -qi "logical block address" || fail "READ CAPACITY(16) did not answer"

step "Writing a pattern through the initiator and reading it back"
opts="driver=iscsi,transport=tcp,portal=127.0.0.1:$portal_port,target=$iqn,lun=$lun,initiator-name=$initiator"
qemu-io --image-opts "$opts" -c "write -P 0xa5 0 1M" -c "write -P 0x3c 4M 1M" || fail "writing through the initiator failed"
qemu-io --image-opts "$opts" -c "read -P 0xa5 0 1M" -c "read -P 0x3c 4M 1M" || fail "the data read back differs from what was written"
echo "2 MiB written and read back identical"

step "An initiator that was not published is refused"
if iscsi-inq -i "$stranger" "$url" >/dev/null 2>&1; then fail "$stranger could reach the LUN"; fi
echo "$stranger: refused"

step "ControllerUnpublishVolume and DeleteVolume"
client unpublish --volume-id "$volume_id" --node-id "quickstart/$initiator" >/dev/null
if iscsi-inq -i "$initiator" "$url" >/dev/null 2>&1; then fail "$initiator still sees the LUN after unpublish"; fi
client delete-volume --volume-id "$volume_id" >/dev/null
client delete-volume --volume-id "$volume_id" >/dev/null   # a retry of a delete succeeds
left=$(client list-volumes | grep -c '"volumeId"' || true)
[ "$left" -eq 0 ] || fail "$left volumes left after delete"
[ -z "$(find "$work" -name 'csi-*.img' -print -quit)" ] || fail "a volume file was left behind"
! tgtadm -C "$tgt_control_port" --lld iscsi --mode target --op show | grep -q "^Target" || fail "a tgt target was left behind"
echo "volume deleted; no target, no export, no file left"

step "Done: the real CSI flow worked end to end on tgt with a file-backed volume"
