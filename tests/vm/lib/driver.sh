# shellcheck shell=bash
# The real csi-scst roles as separate processes inside the test VM, driven through their gRPC APIs as
# Kubernetes would (the sidecars and kubelet are `csi-scst client`). Source after guest-lib.sh:
#   . "$CSI_SCST_LIB/driver.sh"
#
#   drv_init                         # $DRV (state, sockets, TLS material) under $CSI_SCST_WORK
#   drv_target NAME ENGINE [FLAG...] # `csi-scst target` (engine API on 127.0.0.1:$DRV_ENGINE_PORT, mTLS)
#   drv_controller [FLAG...]         # `csi-scst controller` on $DRV/controller.sock, static engine
#   drv_node NAME [FLAG...]          # `csi-scst node` on $DRV/NAME.sock (node id vm-NAME/<initiator>)
#   drv_stop NAME [SIGNAL]           # stops one of them (TERM by default) and waits for it
#   drv_stop_all                     # KILL whatever still runs (EXIT traps)
#   ctl ARGS... / nd NAME ARGS...    # `csi-scst client` on the controller / a node's socket
#
# Logs land in $CSI_SCST_RESULTS/NAME.log (one per process, appended over restarts).
# A role's extra environment comes from the caller (e.g. CSI_SCST_FAULT_POINT=… drv_target …).

DRV=${CSI_SCST_WORK:-/tmp}/driver
DRV_NODE_ID=vm-storage               # the storage node id the engine reports (volume ids carry it)
DRV_ENGINE_PORT=9820
DRV_PORTAL=127.0.0.1:3260
DRV_INSTANCE=csi
DRV_IQN_PREFIX=iqn.2026-11.io.csi-scst
DRV_CALL_TIMEOUT=00:05:00

drv_init() {
    mkdir -p "$DRV/tls" "$DRV/state"
    chmod 700 "$DRV/tls" "$DRV/state"
    [ -f "$DRV/tls/client.key" ] || drv_tls "$DRV/tls"
}

# drv_tls DIR: a per-installation CA, the engine's server certificate (serverAuth, 127.0.0.1) and the
# controller's client certificate (clientAuth), as the Helm chart issues them (EC P-256, PEM).
drv_tls() {
    local d=$1 n
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/ca.key" -sha256 -days 30 -subj "/CN=csi-scst vm CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$d/ca.crt"
    for n in server client; do
        openssl ecparam -name prime256v1 -genkey -noout -out "$d/$n.ec" 2>/dev/null
        openssl pkcs8 -topk8 -nocrypt -in "$d/$n.ec" -out "$d/$n.key"
        openssl req -new -key "$d/$n.key" -subj "/CN=csi-scst vm $n" -out "$d/$n.csr"
        if [ "$n" = server ]; then
            printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$d/$n.ext"
        else
            printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=clientAuth\n' > "$d/$n.ext"
        fi
        openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 -sha256 \
            -extfile "$d/$n.ext" -out "$d/$n.crt" 2>/dev/null
        rm -f "$d/$n.ec" "$d/$n.csr" "$d/$n.ext"
    done
    chmod 600 "$d"/*.key
}

drv_pid() { cat "$DRV/$1.pid" 2>/dev/null; }
drv_running() { local p; p=$(drv_pid "$1") && kill -0 "$p" 2>/dev/null; }

# drv_start NAME ARG...: csi-scst ARG... in the background; stdout+stderr to the results' NAME.log.
drv_start() {
    local name=$1; shift
    echo "---- start $(date -u +%T.%N | cut -c1-12): csi-scst $*" >> "$CSI_SCST_RESULTS/$name.log"
    csi-scst "$@" >> "$CSI_SCST_RESULTS/$name.log" 2>&1 &
    echo $! > "$DRV/$name.pid"
}

# drv_wait NAME SECONDS CMD...: waits for CMD, failing early (with the log's tail) if the process died.
drv_wait() {
    local name=$1 limit=$2 deadline; shift 2
    deadline=$(( $(date +%s) + limit ))
    until "$@" >/dev/null 2>&1; do
        if ! drv_running "$name"; then
            echo "csi-scst $name exited; last lines of its log:" >&2
            tail -n 25 "$CSI_SCST_RESULTS/$name.log" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "timed out after ${limit}s waiting for $name: $*" >&2
            tail -n 25 "$CSI_SCST_RESULTS/$name.log" >&2
            return 1
        fi
        sleep 0.2
    done
}

drv_tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# drv_target NAME ENGINE [FLAG...]: the target engine role with this VM's pools given as flags.
drv_target() {
    local name=$1 engine=$2; shift 2
    drv_start "$name" target --node-id "$DRV_NODE_ID" --instance-id "$DRV_INSTANCE" --iqn-prefix "$DRV_IQN_PREFIX" \
        --listen "tcp://127.0.0.1:$DRV_ENGINE_PORT" --tls-ca "$DRV/tls/ca.crt" --tls-cert "$DRV/tls/server.crt" \
        --tls-key "$DRV/tls/server.key" --engine "$engine" --portal "$DRV_PORTAL" --state-dir "$DRV/state" \
        --log-level Debug "$@"
    drv_wait "$name" 120 drv_tcp_open 127.0.0.1 "$DRV_ENGINE_PORT"
    echo "target $name ($engine): pid $(drv_pid "$name")"
}

# drv_controller [FLAG...]: the controller role reaching the engine statically over mTLS.
drv_controller() {
    rm -f "$DRV/controller.sock"
    drv_start controller controller --endpoint "unix://$DRV/controller.sock" --instance-id "$DRV_INSTANCE" \
        --iqn-prefix "$DRV_IQN_PREFIX" --discovery static --engine "$DRV_NODE_ID=tcp://127.0.0.1:$DRV_ENGINE_PORT" \
        --tls-ca "$DRV/tls/ca.crt" --tls-cert "$DRV/tls/client.crt" --tls-key "$DRV/tls/client.key" --log-level Debug "$@"
    drv_wait controller 120 ctl probe
    echo "controller: pid $(drv_pid controller)"
}

# drv_node NAME [FLAG...]: a node plugin; its node id (vm-NAME/<initiator>) is saved in $DRV/NAME.id.
drv_node() {
    local name=$1; shift
    rm -f "$DRV/$name.sock"
    drv_start "$name" node --endpoint "unix://$DRV/$name.sock" --node-id "vm-$name" --instance-id "$DRV_INSTANCE" \
        --iqn-prefix "$DRV_IQN_PREFIX" --log-level Debug --device-timeout 00:01:30 "$@"
    drv_wait "$name" 120 nd "$name" node-info
    nd "$name" node-info -o id > "$DRV/$name.id"
    echo "node $name: pid $(drv_pid "$name"), node id $(cat "$DRV/$name.id")"
}

# drv_wait_jobs: waits for every background job of the calling shell except the csi-scst processes
# themselves (a role started in the foreground of the same shell is one of its jobs); fails if any
# failed. The roles start in parallel (`drv_target … & drv_controller & drv_node a & drv_wait_jobs`):
# under emulation each takes seconds to come up, and none needs another to start.
drv_wait_jobs() {
    local p rc=0 roles
    roles=$(cat "$DRV"/*.pid 2>/dev/null || true)
    for p in $(jobs -p); do
        grep -qxF "$p" <<<"$roles" && continue
        wait "$p" || rc=1
    done
    return "$rc"
}

drv_stop() {
    local name=$1 sig=${2:-TERM} pid
    pid=$(drv_pid "$name") || return 0
    kill "-$sig" "$pid" 2>/dev/null || true

    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "csi-scst $name (pid $pid) did not stop on SIG$sig" >&2
        return 1
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$DRV/$name.pid"
}

drv_stop_all() {
    local f
    for f in "$DRV"/*.pid; do
        [ -f "$f" ] || continue
        kill -9 "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

# ctl ARGS...: a controller call. UNAVAILABLE (exit 114: "retry") is retried twice after 5 s, as the
# sidecars retry with back-off: under emulation an engine's GetEngineInfo (which asks Ceph for the pool's
# capacity) can outlast the controller's 10 s deadline. DRV_RETRY_UNAVAILABLE=0 turns that off.
ctl() {
    local try rc
    for try in 1 2 3; do
        rc=0
        csi-scst client --endpoint "unix://$DRV/controller.sock" --timeout "$DRV_CALL_TIMEOUT" "$@" || rc=$?
        [ "$rc" -eq 114 ] && [ "${DRV_RETRY_UNAVAILABLE:-1}" = 1 ] && [ "$try" -lt 3 ] || return "$rc"
        echo "ctl $1: UNAVAILABLE, retrying in 5 s (attempt $((try + 1)) of 3)" >&2
        sleep 5
    done
}
nd() { local n=$1; shift; csi-scst client --endpoint "unix://$DRV/$n.sock" --timeout "$DRV_CALL_TIMEOUT" "$@"; }
node_id() { cat "$DRV/$1.id"; }

# The object names of docs/design.md, from a volume id (v1:<i>:<node>:<backend>:<pool>:<key>).
vid_key() { echo "${1##*:}"; }
vol_iqn() { echo "$DRV_IQN_PREFIX:$DRV_INSTANCE.$(vid_key "$1")"; }
vol_lv() { echo "csi-$DRV_INSTANCE-$(vid_key "$1")"; }
vol_serial() { echo "CS$(vid_key "$1")"; }
