#!/bin/bash
# Installs what the VM harness needs on the host (a fresh Debian bookworm CI machine), only when
# something is missing: debootstrap, qemu (system + img), e2fsprogs (mke2fs -d), jq.
set -euo pipefail
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mke2fs >/dev/null || need+=(e2fsprogs)
command -v jq >/dev/null || need+=(jq)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
[ ${#need[@]} -eq 0 ] && exit 0
echo "[install-host-deps] apt-get install ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${need[@]}" >&2
