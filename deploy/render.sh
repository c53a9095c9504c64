#!/usr/bin/env bash
# Renders deploy/csi-scst.yaml from charts/csi-scst with the default values, for installing without Helm.
# The engine API certificates the chart would generate are left out (every render makes new ones and a
# private key has no place in the repository): deploy/engine-tls.sh creates them in the cluster.
# tests/CsiScst.IntegrationTests/Packaging checks that the file matches a fresh render.
set -euo pipefail
cd "$(dirname "$0")/.."
helm=${HELM:-$(scripts/install-helm.sh | tail -n 1)/helm}
{
  echo "# Rendered from charts/csi-scst with its default values by deploy/render.sh; do not edit."
  echo "# Apply deploy/namespace.yaml first, then create the engine API certificates with deploy/engine-tls.sh."
  "$helm" template csi-scst charts/csi-scst --namespace csi-scst
} | python3 -c '
import re, sys
text = sys.stdin.read()
docs = re.split(r"(?m)^---$", text)
kept = [d for d in docs if "csi-scst.io/generated: \"engine-tls\"" not in d]
out = "---".join(kept)
out = re.sub(r"(?m)^\s+checksum/tls: [0-9a-f]{64}\n", "", out)
sys.stdout.write(out)
' > deploy/csi-scst.yaml
echo "wrote deploy/csi-scst.yaml"
