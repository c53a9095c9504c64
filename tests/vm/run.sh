#!/bin/bash
# The csi-scst real-kernel harness: builds or reuses the VM image, stages the scenarios (and the
# csi-scst binaries, when given), boots the VM once and writes OUT_DIR/summary.json + summary.txt.
#
#   tests/vm/run.sh [--out DIR] [--only NAME[,NAME...]] [--scenario FILE]... [--no-default-scenarios]
#                   [--timeout S] [--scenario-timeout S] [--disks N] [--disk-size SIZE] [--verbose]
#
#   --out DIR              results (default /var/tmp/csi-scst-vm/run-<UTC time>)
#   --only NAMES           run only these scenarios of tests/vm/scenarios (names without .sh)
#   --scenario FILE        also run FILE (any path) as a scenario named after its basename
#   --no-default-scenarios run none of tests/vm/scenarios (only --scenario files)
#   --timeout S            hard limit for the VM (default 3000)
#   --scenario-timeout S   default per-scenario limit (default 900; a script may say
#                          "# vm-timeout: N" in its first 30 lines)
#
# Environment:
#   CSI_SCST_BIN        a directory of binaries (e.g. the AOT-published csi-scst) copied into the VM;
#                       the guest sees them in $CSI_SCST_BIN=/opt/csi-scst/bin, also on PATH
#   CSI_SCST_VM_CACHE   image cache root (see build-image.sh)
#   CSI_SCST_VM_FULL    1: scenarios run their full matrix (exported to them)
#   CSI_SCST_SCST_MODULES  a directory of prebuilt SCST modules + iscsi-scstd for the VM's kernel,
#                       staged as /mnt/in/scst-modules (exported to scenarios under the same name)
#
# A scenario that calls vm_skip (guest-lib.sh) is reported with "skipped": true and "passed": false.
# Exit code: 0 only when at least one scenario ran and passed, and every other one was skipped.
set -euo pipefail
{ # the whole script is parsed before it runs: editing it during a run cannot change that run


here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[vm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

out_dir="" only="" defaults=1 timeout_s=3000 scenario_timeout=900 vm_opts=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out_dir=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --scenario) extra+=("$2"); shift 2 ;;
        --no-default-scenarios) defaults=0; shift ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --scenario-timeout) scenario_timeout=$2; shift 2 ;;
        --disks|--disk-size) vm_opts+=("$1" "$2"); shift 2 ;;
        --verbose) vm_opts+=("$1"); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done
case "$scenario_timeout" in ''|*[!0-9]*) die "--scenario-timeout needs seconds" ;; esac
[ "$(id -u)" -eq 0 ] || die "must run as root"

t_all=$(now)
"$here/install-host-deps.sh"

t=$(now)
image=$("$here/build-image.sh" | tail -n1)
image_seconds=$(elapsed "$t")
log "image $image (${image_seconds}s)"

[ -n "$out_dir" ] || out_dir=/var/tmp/csi-scst-vm/run-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
# Reuse an output directory only if it is empty or an earlier run's: never wipe anything else.
if [ -n "$(ls -A "$out_dir")" ]; then
    [ -f "$out_dir/vm-timings.txt" ] || [ -f "$out_dir/summary.json" ] \
        || die "--out $out_dir is not empty and holds no earlier harness run"
    find "$out_dir" -mindepth 1 -delete
fi

# ---- stage IN_DIR ---------------------------------------------------------------------------
in_dir=$(mktemp -d "${TMPDIR:-/var/tmp}/csi-scst-vm-in.XXXXXX")
trap 'rm -rf "$in_dir"' EXIT
cp "$here/guest-run.sh" "$in_dir/"
cp -r "$here/lib" "$in_dir/lib"
mkdir "$in_dir/scenarios"
if [ "$defaults" -eq 1 ]; then
    for f in "$here"/scenarios/*.sh; do
        [ -f "$f" ] || continue
        name=$(basename "$f" .sh)
        if [ -n "$only" ] && ! tr ',' '\n' <<<"$only" | grep -qxF "$name"; then continue; fi
        cp "$f" "$in_dir/scenarios/"
    done
fi
for f in "${extra[@]}"; do
    [ -f "$f" ] || die "scenario $f does not exist"
    cp "$f" "$in_dir/scenarios/$(basename "$f" .sh).sh"
done
if [ -n "$only" ]; then
    for name in $(tr ',' ' ' <<<"$only"); do
        [ -f "$in_dir/scenarios/$name.sh" ] || die "no scenario named $name"
    done
fi
if [ -n "${CSI_SCST_BIN:-}" ]; then
    [ -d "$CSI_SCST_BIN" ] || die "CSI_SCST_BIN=$CSI_SCST_BIN is not a directory"
    mkdir -p "$in_dir/bin"
    cp -a "$CSI_SCST_BIN/." "$in_dir/bin/"
fi
printf 'CSI_SCST_SCENARIO_TIMEOUT=%s\n' "$scenario_timeout" > "$in_dir/harness.env"
# Exported so scenarios see them: the full matrix switch, and where staged SCST modules are.
printf 'export CSI_SCST_VM_FULL=%s\n' "${CSI_SCST_VM_FULL:-0}" >> "$in_dir/harness.env"
if [ -n "${CSI_SCST_SCST_MODULES:-}" ]; then
    [ -d "$CSI_SCST_SCST_MODULES" ] || die "CSI_SCST_SCST_MODULES=$CSI_SCST_SCST_MODULES is not a directory"
    mkdir -p "$in_dir/scst-modules"
    cp -a "$CSI_SCST_SCST_MODULES/." "$in_dir/scst-modules/"
    printf 'export CSI_SCST_SCST_MODULES=%s\n' /mnt/in/scst-modules >> "$in_dir/harness.env"
fi
chmod -R a+rX "$in_dir"
staged=$(ls "$in_dir/scenarios" | sed 's/\.sh$//' | tr '\n' ' ')
log "scenarios: ${staged:-none}"

# ---- boot -------------------------------------------------------------------------------------
vm_rc=0
CSI_SCST_VM_IMAGE=$image "$here/run-vm.sh" "$in_dir" "$out_dir" --timeout "$timeout_s" "${vm_opts[@]}" || vm_rc=$?

# ---- summary ----------------------------------------------------------------------------------
# First failure's excerpt: from the last "---- step" header before the first FAIL line through
# that line and the indented lines right after it (leak lists), at most 40 lines; with no FAIL
# line, the log's last 40 lines.
excerpt() {
    local logf=$1
    [ -f "$logf" ] || { echo "(no log)"; return; }
    if grep -q '^FAIL ' "$logf"; then
        awk 'f { if ($0 ~ /^    /) { print; next } exit }
             /^---- / { buf = "" }
             { buf = buf $0 "\n" }
             /^FAIL / { printf "%s", buf; f = 1 }' "$logf" | tail -n 40
    else
        tail -n 40 "$logf"
    fi
}
kv() { sed -n "s/^$1=//p" "$2" 2>/dev/null | tail -n1; }

scen_json=$(mktemp)
trap 'rm -rf "$in_dir" "$scen_json"' EXIT
: > "$scen_json"
if [ -f "$out_dir/results.tsv" ]; then
    while IFS=$'\t' read -r name rc secs; do
        [ -n "$name" ] || continue
        res="$out_dir/scenarios/$name"
        steps=$(jq -Rn '[inputs | split("\t") | select(length == 3) | {name: .[0], passed: (.[1] == "PASS"), seconds: (.[2] | tonumber)}]' \
            < "$res/steps.tsv" 2>/dev/null || echo '[]')
        if [ "$rc" = 0 ]; then fail_text=""; else fail_text=$(excerpt "$res/log"); fi
        skip_reason=""
        [ "$rc" = 0 ] && [ -f "$res/skipped" ] && skip_reason=$(head -c 500 "$res/skipped")
        jq -n --arg name "$name" --argjson rc "$rc" --argjson secs "$secs" --argjson steps "$steps" \
            --arg failure "$fail_text" --arg skip "$skip_reason" \
            '{name: $name, passed: ($rc == 0 and $skip == ""), skipped: ($skip != ""), exit_code: $rc, seconds: $secs, steps: $steps,
              skip_reason: (if $skip == "" then null else $skip end),
              failure: (if $failure == "" then null else $failure end)}' >> "$scen_json"
    done < "$out_dir/results.tsv"
fi
# Scenarios that were staged but never reported (VM crashed or timed out) count as failed.
for name in $staged; do
    if ! grep -q "^$name	" "$out_dir/results.tsv" 2>/dev/null; then
        jq -n --arg name "$name" --arg failure "$( [ -f "$out_dir/scenarios/$name/log" ] && tail -n 40 "$out_dir/scenarios/$name/log"; echo "(no result: the VM stopped first; see console.log)")" \
            '{name: $name, passed: false, skipped: false, exit_code: null, seconds: null, steps: [], failure: $failure}' >> "$scen_json"
    fi
done

total_seconds=$(elapsed "$t_all")
jq -s --arg image "$image" --argjson image_seconds "$image_seconds" --argjson vm_rc "$vm_rc" \
    --arg vm_seconds "$(kv vm_seconds "$out_dir/vm-timings.txt")" \
    --arg boot "$(kv boot_to_script_seconds "$out_dir/vm-timings.txt")" \
    --arg kernel "$(kv kernel "$out_dir/guest-boot.txt")" \
    --argjson total "$total_seconds" \
    '{image: $image, kernel: $kernel, image_seconds: $image_seconds,
      vm_seconds: ($vm_seconds | tonumber? // null), boot_to_script_seconds: ($boot | tonumber? // null),
      total_seconds: $total, vm_exit_code: $vm_rc,
      passed: (any(.[]; .passed) and all(.[]; .passed or .skipped)), scenarios: .}' "$scen_json" > "$out_dir/summary.json"

{
    echo "csi-scst VM harness: $(jq -r 'if .passed then "PASSED" else "FAILED" end' "$out_dir/summary.json")"
    jq -r '"image \(.image) (\(.image_seconds)s), kernel \(.kernel), boot to script \(.boot_to_script_seconds)s, VM \(.vm_seconds)s, total \(.total_seconds)s"' "$out_dir/summary.json"
    jq -r '.scenarios[] | "  \(if .passed then "PASS" elif .skipped then "SKIP" else "FAIL" end) \(.name) (\(.seconds // "?")s)\(if .skipped then ": \(.skip_reason)" else "" end)" ,
        (.steps[] | "      \(if .passed then "pass" else "FAIL" end) \(.name) (\(.seconds)s)"),
        (if .failure then (.failure | split("\n") | map("      | " + .) | join("\n")) else empty end)' "$out_dir/summary.json"
    [ "$(jq '.scenarios | length' "$out_dir/summary.json")" -gt 0 ] || echo "  no scenario ran"
    echo "results: $out_dir (summary.json, console.log, scenarios/*/log)"
} | tee "$out_dir/summary.txt"

jq -e '.passed' "$out_dir/summary.json" >/dev/null
exit
}
