#!/usr/bin/env bash
# Generate throw-away TLS material for the interop tests into DIR (created if
# missing). Both suites call this at test time, so no private key is ever
# committed. Needs the `openssl` command (scripts/interop.sh checks for it).
#
# Usage: gen-certs.sh DIR
#
# DIR/ca.pem              test CA (self-signed, CA:TRUE)
# DIR/server.{pem,key}    server cert signed by the CA, SAN IP:127.0.0.1 + DNS:localhost, CN=localhost
# DIR/client.{pem,key}    client cert signed by the CA, CN=interop-client, EKU clientAuth
# DIR/rogue.{pem,key}     self-signed client cert NOT issued by the CA, CN=interop-rogue
#
# Keys are RSA 2048 in PKCS#8 PEM ("BEGIN PRIVATE KEY"); set CERT_KEY_TYPE=ec
# for ECDSA P-256 keys in SEC1 PEM ("BEGIN EC PRIVATE KEY") instead.
set -euo pipefail

dir="${1:?usage: gen-certs.sh DIR}"
if ! command -v openssl >/dev/null 2>&1; then
  echo "gen-certs.sh: the openssl command is required (apt-get install openssl)" >&2
  exit 1
fi
mkdir -p "$dir"
cd "$dir"

newkey() { # path
  case "${CERT_KEY_TYPE:-rsa}" in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null ;;
    ec) openssl ecparam -name prime256v1 -genkey -noout -out "$1" ;;
    *) echo "gen-certs.sh: CERT_KEY_TYPE must be rsa or ec" >&2; exit 1 ;;
  esac
  chmod 600 "$1"
}

serial() { echo "0x$(openssl rand -hex 8)"; }

# keyEncipherment only makes sense for RSA keys.
case "${CERT_KEY_TYPE:-rsa}" in
  ec) ku="digitalSignature" ;;
  *) ku="digitalSignature,keyEncipherment" ;;
esac

# CA
newkey ca.key
openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=nsq-rs interop test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -set_serial "$(serial)" -out ca.pem

leaf() { # name subject extensions
  newkey "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$(serial)" \
    -days 2 -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

leaf server "/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,$ku
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"

leaf client "/CN=interop-client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,$ku
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"

# A client certificate that no configured CA vouches for.
newkey rogue.key
openssl req -x509 -new -key rogue.key -sha256 -days 2 -subj "/CN=interop-rogue" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,$ku" \
  -addext "extendedKeyUsage=clientAuth" \
  -set_serial "$(serial)" -out rogue.pem

# The CA key is only needed to sign the leaves above.
rm -f ca.key
openssl verify -CAfile ca.pem server.pem client.pem >/dev/null
