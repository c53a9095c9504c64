# shellcheck shell=bash
# A single-node Ceph cluster (1 mon, 1 mgr, 1 memstore OSD) on 127.0.0.1 inside the test VM,
# started as plain processes (machine.md "A real Ceph cluster on loopback").
#   . "$CSI_SCST_LIB/ceph.sh"
#   ceph_bootstrap DIR      # keys, monmap, mon, mgr, osd; writes DIR/ceph.conf, DIR/*.pid
#   ceph_wait_osd DIR       # until 1 OSD is up and in
#   ceph_pool DIR rbd       # replicated pool, size 1, rbd application
#   ceph_stop DIR           # kills the recorded PIDs
# Clients use `ceph -c DIR/ceph.conf` / `rbd -c DIR/ceph.conf` (or CEPH_CONF=DIR/ceph.conf).

CEPH_CLI_TIMEOUT=${CEPH_CLI_TIMEOUT:-120}

vm_ceph() { local d=$1; shift; timeout "$CEPH_CLI_TIMEOUT" ceph -c "$d/ceph.conf" "$@"; }
vm_rbd() { local d=$1; shift; timeout "$CEPH_CLI_TIMEOUT" rbd -c "$d/ceph.conf" "$@"; }

ceph_write_conf() {
    local d=$1 fsid=$2
    cat > "$d/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $d/keyring.\$name
run dir = $d/run
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
auth allow insecure global id reclaim = false
paxos propose interval = 0.1
mgr initial modules = status
mon cluster log file = $d/log/cluster.log
log file = $d/log/\$name.log

[mon]
mon data = $d/mon/\$cluster-\$id
admin socket = $d/run/\$name.asok

[mgr]
mgr data = $d/mgr/\$cluster-\$id
mgr stats period = 1
# Under TCG every Python module costs seconds to import, and the mgr imports every module it can
# find. Keep the always-on ones (balancer crash devicehealth orchestrator pg_autoscaler progress
# rbd_support status telemetry volumes): without them the cluster reports HEALTH_ERR ("mgr modules
# have failed"). mgr initial modules (read by the mon at creation) enables nothing extra.
mgr disabled modules = alerts diskprediction_local influx insights iostat localpool mirroring nfs osd_perf_query osd_support prometheus restful selftest snap_schedule stats telegraf test_orchestrator zabbix
admin socket = $d/run/\$name.asok

[osd]
osd data = $d/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 1073741824
admin socket = $d/run/\$name.asok
EOF
}

ceph_bootstrap() {
    local d=$1 fsid osd_uuid osd_key id
    mkdir -p "$d/mon" "$d/mgr/ceph-x" "$d/osd" "$d/run" "$d/log"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    ceph_write_conf "$d" "$fsid"
    ceph-authtool --create-keyring "$d/keyring.mon." --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$d/keyring.client.admin" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool --create-keyring "$d/keyring.mgr.x" --gen-key -n mgr.x \
        --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
    ceph-authtool "$d/keyring.mon." --import-keyring "$d/keyring.client.admin" >/dev/null
    ceph-authtool "$d/keyring.mon." --import-keyring "$d/keyring.mgr.x" >/dev/null
    monmaptool --create --fsid "$fsid" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' "$d/monmap" >/dev/null
    ceph-mon -c "$d/ceph.conf" --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring.mon."
    ceph-mon -c "$d/ceph.conf" -i a -f > "$d/log/mon.out" 2>&1 &
    echo $! > "$d/mon.pid"
    ceph-mgr -c "$d/ceph.conf" -i x -f > "$d/log/mgr.out" 2>&1 &
    echo $! > "$d/mgr.pid"

    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_key=$(ceph-authtool --gen-print-key)
    printf '{"cephx_secret": "%s"}\n' "$osd_key" > "$d/osd-new.json"
    id=$(vm_ceph "$d" osd new "$osd_uuid" -i "$d/osd-new.json")
    rm -f "$d/osd-new.json"
    [ "$id" = 0 ] || { echo "unexpected OSD id '$id'" >&2; return 1; }
    mkdir -p "$d/osd/ceph-0"
    ceph-authtool --create-keyring "$d/keyring.osd.0" --name osd.0 --add-key "$osd_key" >/dev/null
    ceph-osd -c "$d/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" > "$d/log/osd-mkfs.out" 2>&1
    ceph-osd -c "$d/ceph.conf" -i 0 -f > "$d/log/osd.out" 2>&1 &
    echo $! > "$d/osd.pid"
}

ceph_osd_up() { vm_ceph "$1" osd stat --format json | jq -e '.num_up_osds == 1 and .num_in_osds == 1' >/dev/null; }
ceph_wait_osd() {
    local d=$1 i
    for i in $(seq 1 1200); do
        ceph_osd_up "$d" && return 0
        sleep 0.2
    done
    echo "OSD did not come up" >&2
    return 1
}
ceph_mgr_available() { vm_ceph "$1" mgr stat --format json | jq -e '.available == true' >/dev/null; }

ceph_pool() {
    local d=$1 pool=$2
    vm_ceph "$d" osd pool create "$pool" 8 8 --autoscale-mode=off
    vm_rbd "$d" pool init "$pool"
}

ceph_stop() {
    local d=$1 p pid i
    for p in osd mgr mon; do
        [ -f "$d/$p.pid" ] || continue
        pid=$(cat "$d/$p.pid")
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$d/$p.pid"
    done
}
