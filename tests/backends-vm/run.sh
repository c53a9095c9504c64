#!/bin/bash
# Publishes the backend VM check (Native AOT) and runs its LVM and RBD scenarios in the test VM (tests/vm/run.sh, root).
#   tests/backends-vm/run.sh [run.sh options, e.g. --verbose]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$(mktemp -d /var/tmp/csi-scst-backends-vm-bin.XXXXXX)
trap 'rm -rf "$bin"' EXIT
dotnet publish "$here/BackendsVmCheck.csproj" -c Release -r linux-x64 -o "$bin" -nologo -clp:ErrorsOnly
rm -f "$bin"/*.dbg "$bin"/*.pdb
CSI_SCST_BIN=$bin "$repo/tests/vm/run.sh" --no-default-scenarios --scenario "$here/lvm-backend.sh" --scenario "$here/rbd-backend.sh" "$@"
