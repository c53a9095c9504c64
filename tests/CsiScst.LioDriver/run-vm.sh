#!/bin/bash
# Runs the LIO engine's real-kernel scenario (tests/vm/scenarios/manual/40-lio-engine.sh): publishes
# lio-driver with Native AOT and boots the VM harness with it in $CSI_SCST_BIN.
#   sudo tests/CsiScst.LioDriver/run-vm.sh [tests/vm/run.sh options, e.g. --out DIR --verbose]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$(mktemp -d "${TMPDIR:-/var/tmp}/lio-driver-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
dotnet publish "$here/CsiScst.LioDriver.csproj" -c Release -r linux-x64 -o "$bin/publish" -p:DebugType=none -p:StripSymbols=true >&2
mkdir -p "$bin/bin"
cp "$bin/publish/lio-driver" "$bin/bin/"
CSI_SCST_BIN="$bin/bin" "$repo/tests/vm/run.sh" --no-default-scenarios --scenario "$repo/tests/vm/scenarios/manual/40-lio-engine.sh" "$@"
