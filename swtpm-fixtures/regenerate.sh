#!/usr/bin/env bash
# Regenerates the swtpm fixtures that Vigil's TPM tests start from.
#
# What it builds (all committed, so tests never need to run this):
#   ca/root.pem, ca/intermediate.pem   a manufacturer-like EK CA: "Vigil Test TPM EK Root CA"
#                                      and "Vigil Test TPM EK Intermediate CA 01" (RSA-3072 / RSA-2048)
#   ca/root.key, ca/intermediate.key   their private keys. TEST-ONLY keys, published on purpose so the
#                                      state can be regenerated; never trust this CA outside tests.
#   state/                             swtpm TPM 2.0 state made by swtpm_setup: EK RSA-2048 and ECC
#                                      (P-384, high range, as swtpm_setup makes it) with certificates in
#                                      NV 0x01C00002 / 0x01C00016 issued by the intermediate above,
#                                      SHA-1, SHA-256 and SHA-384 PCR banks active.
#   ek-rsa.der, ek-ecc.der             the EK certificates swtpm_setup wrote (also readable from NV).
#
# Needs: swtpm, swtpm-tools (swtpm_setup, swtpm_localca, swtpm_cert), openssl.
# Usage: swtpm-fixtures/regenerate.sh        (run from anywhere; rewrites this folder's ca/ and state/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

keep_ca=${KEEP_CA:-1}
mkdir -p "$here/ca"
if [[ "$keep_ca" != 1 || ! -f "$here/ca/intermediate.key" ]]; then
  echo "== building the test EK CA (root + intermediate)"
  cat >"$work/ca.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[int_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
  openssl genrsa -out "$here/ca/root.key" 3072 2>/dev/null
  openssl req -new -x509 -key "$here/ca/root.key" -days 9125 -sha256 \
    -subj "/C=DE/O=Vigil Test TPM Manufacturer/CN=Vigil Test TPM EK Root CA" \
    -config "$work/ca.cnf" -extensions root_ext -out "$here/ca/root.pem"
  openssl genrsa -traditional -out "$here/ca/intermediate.key" 2048 2>/dev/null
  openssl req -new -key "$here/ca/intermediate.key" \
    -subj "/C=DE/O=Vigil Test TPM Manufacturer/CN=Vigil Test TPM EK Intermediate CA 01" \
    -config "$work/ca.cnf" -out "$work/int.csr"
  openssl x509 -req -in "$work/int.csr" -CA "$here/ca/root.pem" -CAkey "$here/ca/root.key" \
    -set_serial 0x1001 -days 7300 -sha256 -extfile "$work/ca.cnf" -extensions int_ext \
    -out "$here/ca/intermediate.pem"
  chmod 0644 "$here/ca/"*.key   # test-only keys, committed on purpose
fi

echo "== provisioning swtpm state with swtpm_setup and a local CA configuration"
mkdir -p "$work/localca" "$work/state"
cp "$here/ca/intermediate.key" "$work/localca/signkey.pem"
cp "$here/ca/intermediate.pem" "$work/localca/issuercert.pem"
echo 1 > "$work/localca/certserial"
cat >"$work/swtpm-localca.conf" <<CNF
statedir = $work/localca
signingkey = $work/localca/signkey.pem
issuercert = $work/localca/issuercert.pem
certserial = $work/localca/certserial
CNF
cat >"$work/swtpm-localca.options" <<CNF
--platform-manufacturer Vigil
--platform-version 1.0
--platform-model vigil-ci
CNF
cat >"$work/swtpm_setup.conf" <<CNF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $work/swtpm-localca.conf
create_certs_tool_options = $work/swtpm-localca.options
active_pcr_banks = sha1,sha256,sha384
CNF
mkdir -p "$work/certs"
swtpm_setup --tpm2 --tpm-state "$work/state" --config "$work/swtpm_setup.conf" \
  --create-ek-cert --create-platform-cert --pcr-banks sha1,sha256,sha384 \
  --write-ek-cert-files "$work/certs" --overwrite --display
rm -rf "$here/state"; mkdir -p "$here/state"
cp "$work/state/"* "$here/state/"
ls -la "$work/certs"
for f in "$work/certs"/*; do cp "$f" "$here/"; done
echo "== done: $here"
