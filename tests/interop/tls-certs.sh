#!/usr/bin/env bash
# Writes a throw-away test CA (ca.pem) and a server certificate for localhost and
# 127.0.0.1 signed by it (server.pem, server.key) into DIR, with the openssl CLI.
#   tests/interop/tls-certs.sh DIR
set -euo pipefail
DIR=${1:?usage: tls-certs.sh DIR}
command -v openssl >/dev/null || { echo "tls-certs.sh: openssl not found" >&2; exit 1; }
cd "$DIR"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec ca.key
openssl req -x509 -new -key ca.key -days 2 -subj "/CN=Junction interop test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null
ec server.key
openssl req -new -key server.key -subj "/CN=localhost" -out server.csr 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
