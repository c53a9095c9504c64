#!/usr/bin/env bash
# The VM harness as one suite of the whole test run (scripts/test.sh calls this):
# publishes the driver with Native AOT (what runs in the VM must start fast under emulation; only
# `csi-scst`: every scenario drives its real roles), boots the VM once with every scenario, and writes
# OUT/counts ("passed=N failed=N skipped=N", one test per scenario) for the summary line.
# Environment: CSI_SCST_VM_FULL=1 (full matrix), CSI_SCST_SCST_MODULES (see run.sh),
# CSI_SCST_VM_TIMEOUT (the VM's hard limit in seconds, default 4500, 7200 with the full matrix).
# Exit status: that of tests/vm/run.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: run-suite.sh OUT_DIR}
mkdir -p "$out"
bin=$out/bin
rm -rf "$bin" "$out/run"
mkdir -p "$bin"

echo "publishing csi-scst with Native AOT"
if ! dotnet publish "$root/src/CsiScst" -c Release -r linux-x64 -p:PublishAot=true -nologo -clp:ErrorsOnly \
        -o "$out/publish-csi-scst" >"$out/publish.log" 2>&1; then
    tail -n 30 "$out/publish.log"
    echo "passed=0 failed=1 skipped=0" >"$out/counts"
    exit 1
fi
cp "$out/publish-csi-scst/csi-scst" "$bin/"

# The whole boot's hard limit: every scenario has its own timeout; this only stops a hung VM. The default
# run takes about 20 min on a quiet 2-core machine and up to about 50 min on a heavily loaded one.
vm_timeout=${CSI_SCST_VM_TIMEOUT:-4500}
[ "${CSI_SCST_VM_FULL:-0}" = 1 ] && vm_timeout=${CSI_SCST_VM_TIMEOUT:-7200}
CSI_SCST_BIN=$bin "$here/run.sh" --out "$out/run" --timeout "$vm_timeout"
status=$?
summary=$out/run/summary.json
if [ -f "$summary" ]; then
    # A skipped scenario (vm_skip: the SCST slot without CSI_SCST_SCST_MODULES) is neither passed nor failed.
    passed=$(jq '[.scenarios[] | select(.passed)] | length' "$summary")
    failed=$(jq '[.scenarios[] | select((.passed | not) and (.skipped != true))] | length' "$summary")
    skipped=$(jq '[.scenarios[] | select(.skipped == true)] | length' "$summary")
else
    passed=0 failed=1 skipped=0
fi
echo "passed=$passed failed=$failed skipped=$skipped" >"$out/counts"
exit $status
