#!/usr/bin/env bash
# The csi-scst benchmark, end to end: installs what it needs, publishes csi-scst with Native AOT, builds the
# bench and runs it. Prints every figure beside its target and writes docs/benchmarks.md.
#   tests/bench/run.sh                 # everything (about 15-30 minutes on 2 cores)
#   tests/bench/run.sh footprint       # one or more sections: footprint overhead concurrency scale
#   tests/bench/run.sh --quick         # fewer volumes and runs, for a smoke run
# Needs root (tgtd, the SCST sysfs model over FUSE). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."

# tgt (tgtd, tgtadm); the SCST model speaks /dev/fuse itself, so nothing else is needed.
scripts/install-deps.sh quickstart >/dev/null

out=artifacts/bench/aot
echo "==> publishing csi-scst with Native AOT into $out"
dotnet publish src/CsiScst -c Release -r linux-x64 -p:PublishAot=true -nologo -clp:ErrorsOnly -o "$out" >/dev/null

echo "==> building the bench"
dotnet build tests/bench -c Release -nologo -clp:ErrorsOnly >/dev/null

exec dotnet tests/bench/bin/Release/net10.0/csi-scst-bench.dll --binary "$out/csi-scst" "$@"
