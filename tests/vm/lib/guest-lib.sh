# shellcheck shell=bash
# Helpers for scenario scripts running inside the csi-scst test VM. Source it:
#   . "$CSI_SCST_LIB/guest-lib.sh"
#
# step NAME CMD [ARG...]
#   Runs CMD (a command or a shell function) in a subshell with `set -e`, prints its output
#   indented under a "---- NAME" header, then one verdict line:
#       PASS NAME (1.23s)
#       FAIL NAME (1.23s) rc=N
#   and appends "NAME<TAB>PASS|FAIL<TAB>seconds" to $CSI_SCST_RESULTS/steps.tsv.
#   Returns CMD's exit code, so under `set -e` the first failing step ends the scenario (use an
#   EXIT trap for best-effort teardown). Being a subshell, a step cannot set variables of the
#   script: derive names up front, or pass values through files in $CSI_SCST_WORK.

vm_now() { date +%s.%N; }
vm_since() { awk -v a="$1" -v b="$(vm_now)" 'BEGIN { printf "%.2f", b - a }'; }

step() {
    local name=$1; shift
    local t0 out rc dur had_e=0
    [[ $- == *e* ]] && had_e=1
    t0=$(vm_now)
    out=$(mktemp)
    echo "---- $name"
    set +e
    ( set -e; "$@" ) > "$out" 2>&1
    rc=$?
    [ "$had_e" -eq 1 ] && set -e
    dur=$(vm_since "$t0")
    sed 's/^/    /' "$out"
    rm -f "$out"
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name (${dur}s)"
        printf '%s\tPASS\t%s\n' "$name" "$dur" >> "${CSI_SCST_RESULTS:-/tmp}/steps.tsv"
    else
        echo "FAIL $name (${dur}s) rc=$rc"
        printf '%s\tFAIL\t%s\n' "$name" "$dur" >> "${CSI_SCST_RESULTS:-/tmp}/steps.tsv"
    fi
    return "$rc"
}

# wait_for SECONDS CMD [ARG...]: polls CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_for() {
    local limit=$1; shift
    local deadline
    deadline=$(awk -v n="$(vm_now)" -v l="$limit" 'BEGIN { printf "%.2f", n + l }')
    until "$@" >/dev/null 2>&1; do
        if awk -v n="$(vm_now)" -v d="$deadline" 'BEGIN { exit !(n > d) }'; then
            echo "timed out after ${limit}s waiting for: $*" >&2
            return 1
        fi
        sleep 0.1
    done
}

# expect_rc WANT CMD [ARG...]: runs CMD, prints its output, fails unless it exits with WANT.
expect_rc() {
    local want=$1; shift
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "expected exit code $want, got $rc: $*" >&2
        return 1
    fi
}

# Reads the serial from a VPD page 0x80 file: 4-byte header, then the serial (trailing NULs/spaces cut).
vpd80_serial() { tail -c +5 "$1" | tr -d '\0' | sed 's/[[:space:]]*$//'; }

# The initiator name of this VM (fixed in the image).
vm_initiator_name() { sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi; }

# Removes every LVM object on a disk and its signatures (best effort, for EXIT traps).
vm_wipe_disk() {
    local disk=$1 vg
    for vg in $(pvs --noheadings -o vg_name "$disk" 2>/dev/null | sort -u); do
        vgremove -ff -y "$vg" >/dev/null 2>&1 || true
    done
    pvremove -ff -y "$disk" >/dev/null 2>&1 || true
    wipefs -a -q "$disk" >/dev/null 2>&1 || true
}

# vm_require_bin NAME: fails the scenario unless NAME was staged (run.sh with CSI_SCST_BIN).
vm_require_bin() {
    if [ ! -x "${CSI_SCST_BIN:-}/$1" ]; then
        echo "FAIL this scenario needs $1 in \$CSI_SCST_BIN (run.sh with CSI_SCST_BIN=<dir holding $1>; tests/vm/run-suite.sh publishes it)"
        exit 1
    fi
}

# vm_full_matrix: true when the run asked for every combination (CSI_SCST_VM_FULL=1 on the host).
vm_full_matrix() { [ "${CSI_SCST_VM_FULL:-0}" = 1 ]; }

# vm_skip REASON: ends the scenario as skipped (run.sh reports it with "skipped": true, run-suite.sh
# counts it as skipped, not passed). Call it before anything is set up.
vm_skip() {
    echo "SKIP $CSI_SCST_SCENARIO: $*"
    printf '%s\n' "$*" > "${CSI_SCST_RESULTS:-/tmp}/skipped"
    exit 0
}
