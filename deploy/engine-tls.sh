#!/usr/bin/env bash
# Creates the engine API certificates for the plain manifests (the Helm chart generates its own):
# a CA, a client certificate for the controller (clientAuth) and a server certificate for the target
# engines (serverAuth), as the Secrets csi-scst-engine-tls-controller and csi-scst-engine-tls-target.
#   deploy/engine-tls.sh [--namespace NS] [--days N] [--print]
# --print writes the Secrets as YAML to stdout instead of creating them (kubectl --dry-run=client).
# Engines are dialled by node IP and names are not checked: the CA is the trust boundary, so keep its key
# out of the cluster (this script deletes it).
set -euo pipefail
namespace=csi-scst
days=3650
print=0
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) namespace=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --print) print=1; shift ;;
    *) echo "usage: $0 [--namespace NS] [--days N] [--print]" >&2; exit 2 ;;
  esac
done
kubectl=${KUBECTL:-kubectl}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
umask 077

openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=csi-scst engine CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt 2>/dev/null

issue() { # name, CN, extended key usage
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.ec.key"
  openssl pkcs8 -topk8 -nocrypt -in "$1.ec.key" -out "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
issue controller "csi-scst controller" clientAuth
issue target "csi-scst target" serverAuth

secret() { # name, cert prefix
  "$kubectl" create secret generic "$1" --namespace "$namespace" --type kubernetes.io/tls \
    --from-file=ca.crt=ca.crt --from-file=tls.crt="$2.crt" --from-file=tls.key="$2.key" --dry-run=client -o yaml
}
if [ "$print" = 1 ]; then
  secret csi-scst-engine-tls-controller controller
  echo "---"
  secret csi-scst-engine-tls-target target
else
  secret csi-scst-engine-tls-controller controller | "$kubectl" apply -f -
  secret csi-scst-engine-tls-target target | "$kubectl" apply -f -
fi
