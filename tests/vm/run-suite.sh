#!/usr/bin/env bash
# The VM harness as one suite of the whole test run (scripts/test.sh calls this):
# publishes the driver with Native AOT (what runs in the VM must start fast under emulation; only
# `csi-scst`: every scenario drives its real roles), boots the VM once with every scenario, and writes
# OUT/counts ("passed=N failed=N skipped=N", one test per scenario) for the summary line.
# Environment: CSI_SCST_VM_FULL=1 (full matrix), CSI_SCST_SCST_MODULES (see run.sh).
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

CSI_SCST_BIN=$bin "$here/run.sh" --out "$out/run"
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
