# shellcheck shell=bash
# Raw LIO configfs helpers for scenario scripts (interfaces.md section B). Shell only, no targetcli:
# the point is to exercise the kernel interface the driver's Lio engine writes.
#   . "$CSI_SCST_LIB/lio.sh"

LIO_ROOT=/sys/kernel/config/target

lio_load() {
    local m
    mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
    for m in target_core_mod target_core_iblock target_core_file iscsi_target_mod; do
        modprobe "$m"
    done
    [ -d "$LIO_ROOT/core" ] || { echo "configfs has no target/core after loading modules" >&2; return 1; }
    mkdir -p "$LIO_ROOT/iscsi"
}

# lio_backstore_block NAME DEVICE SERIAL: iblock backstore in its own HBA dir (first free
# iblock_N, as rtslib does); prints the backstore directory.
lio_backstore_block() {
    local name=$1 dev=$2 serial=$3 n=0 dir
    while [ -e "$LIO_ROOT/core/iblock_$n" ]; do n=$((n + 1)); done
    dir="$LIO_ROOT/core/iblock_$n/$name"
    mkdir -p "$dir"
    printf 'udev_path=%s' "$dev" > "$dir/control"
    printf '%s' "$dev" > "$dir/udev_path"
    echo 1 > "$dir/enable"
    echo "$serial" > "$dir/wwn/vpd_unit_serial"
    printf '%s\n' "$dir"
}

# lio_backstore_dir NAME: the backstore directory of NAME (any HBA), or nothing.
lio_backstore_dir() {
    local d
    for d in "$LIO_ROOT"/core/*/"$1"; do
        [ -d "$d" ] && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}

# lio_target IQN BACKSTORE_DIR INITIATOR [PORTAL] [CHAP_USER CHAP_PASSWORD]
# One target, tpgt_1, lun_0 -> backstore, explicit ACL for INITIATOR with mapped lun_0, portal,
# authentication 0 (or CHAP for the ACL when a user is given), enabled.
lio_target() {
    local iqn=$1 bs=$2 ini=$3 portal=${4:-127.0.0.1:3260} user=${5:-} pass=${6:-}
    local tpg="$LIO_ROOT/iscsi/$iqn/tpgt_1"
    mkdir -p "$tpg"
    mkdir "$tpg/lun/lun_0"
    ln -s "$bs" "$tpg/lun/lun_0/lun0"
    mkdir "$tpg/np/$portal"
    lio_acl "$iqn" "$ini" "$user" "$pass"
    if [ -n "$user" ]; then
        echo 1 > "$tpg/attrib/authentication"
    else
        echo 0 > "$tpg/attrib/authentication"
    fi
    echo 1 > "$tpg/enable"
}

# lio_acl IQN INITIATOR [CHAP_USER CHAP_PASSWORD]: explicit ACL with lun_0 mapped read-write.
lio_acl() {
    local iqn=$1 ini=$2 user=${3:-} pass=${4:-}
    local tpg="$LIO_ROOT/iscsi/$iqn/tpgt_1"
    mkdir "$tpg/acls/$ini"
    mkdir "$tpg/acls/$ini/lun_0"
    ln -s "$tpg/lun/lun_0" "$tpg/acls/$ini/lun_0/lun0"
    echo 0 > "$tpg/acls/$ini/lun_0/write_protect"
    if [ -n "$user" ]; then
        # No trailing newline: on 6.1 LIO keeps it as part of the value ("CHAP_N values do not
        # match!" in dmesg, iscsiadm exit 24), unlike wwn/vpd_unit_serial which strips it.
        printf '%s' "$user" > "$tpg/acls/$ini/auth/userid"
        printf '%s' "$pass" > "$tpg/acls/$ini/auth/password"
    fi
}

# lio_target_delete IQN: reverse order of lio_target (interfaces.md B "Teardown").
lio_target_delete() {
    local tdir="$LIO_ROOT/iscsi/$1" tpg acl mlun lun link np
    [ -d "$tdir" ] || return 0
    for tpg in "$tdir"/tpgt_*; do
        [ -d "$tpg" ] || continue
        echo 0 > "$tpg/enable" 2>/dev/null || true
        for acl in "$tpg"/acls/*; do
            [ -d "$acl" ] || continue
            for mlun in "$acl"/lun_*; do
                [ -d "$mlun" ] || continue
                for link in "$mlun"/*; do [ -L "$link" ] && rm "$link"; done
                rmdir "$mlun"
            done
            rmdir "$acl"
        done
        for lun in "$tpg"/lun/lun_*; do
            [ -d "$lun" ] || continue
            for link in "$lun"/*; do [ -L "$link" ] && rm "$link"; done
            rmdir "$lun"
        done
        for np in "$tpg"/np/*; do [ -d "$np" ] && rmdir "$np"; done
        rmdir "$tpg"
    done
    rmdir "$tdir"
}

# lio_backstore_delete NAME: removes the backstore and its HBA dir when empty.
lio_backstore_delete() {
    local dir hba
    dir=$(lio_backstore_dir "$1") || return 0
    hba=$(dirname "$dir")
    rmdir "$dir"
    rmdir "$hba" 2>/dev/null || true
}

# lio_list: every target and backstore in configfs (for leak checks), one per line.
lio_list() {
    local d
    for d in "$LIO_ROOT"/iscsi/iqn.* "$LIO_ROOT"/iscsi/eui.* "$LIO_ROOT"/iscsi/naa.*; do
        [ -d "$d" ] && echo "lio target ${d##*/}"
    done
    for d in "$LIO_ROOT"/core/*/*; do
        [ -d "$d" ] || continue
        case "${d##*/}" in alua|statistics|wwn|attrib|pr) continue ;; esac
        [ -f "$d/enable" ] && echo "lio backstore ${d#"$LIO_ROOT"/core/}"
    done
    return 0
}

# lio_clear_all: removes every target and backstore (forced cleanup between scenarios).
lio_clear_all() {
    local d hba
    [ -d "$LIO_ROOT/iscsi" ] || return 0
    for d in "$LIO_ROOT"/iscsi/*; do
        [ -d "$d/tpgt_1" ] || ls -d "$d"/tpgt_* >/dev/null 2>&1 || continue
        lio_target_delete "${d##*/}" || true
    done
    for hba in "$LIO_ROOT"/core/*_[0-9]*; do
        [ -d "$hba" ] || continue
        for d in "$hba"/*; do
            [ -f "$d/enable" ] && rmdir "$d" 2>/dev/null
        done
        rmdir "$hba" 2>/dev/null || true
    done
    return 0
}
