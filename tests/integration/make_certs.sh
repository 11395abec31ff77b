#!/usr/bin/env bash
# Throwaway PKI for TLS tests: a CA, a server certificate for localhost/127.0.0.1 and a client
# certificate, all in $1. Never used outside tests.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=kp-test-ca" 2>/dev/null
cat >server.ext <<EXT
subjectAltName = DNS:localhost, IP:127.0.0.1
extendedKeyUsage = serverAuth, clientAuth
EXT
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
cat >client.ext <<EXT
extendedKeyUsage = clientAuth
EXT
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=kp-test-client" 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null
