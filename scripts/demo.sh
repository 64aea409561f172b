#!/usr/bin/env bash
# The main job, on one machine: a software TPM (swtpm) from the committed fixtures; Vigil provisions its
# TPM-rooted identity, shows it, and produces a quote that tpm2-tools' verifier accepts. Then the simulator
# boots "as" a real machine (a GCE RHEL 8 Secure Boot event log replayed into its PCRs), the device
# collects signed evidence, and the security team's policy accepts it; after a tampered boot (an extra,
# unapproved measurement in PCR 4) the same policy refuses it and names the rule, PCR and event.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
command -v python3 >/dev/null 2>&1 || VIGIL_APT_PACKAGES+=(python3)   # finds free ports below
vigil_install_packages
vigil_require_swift

echo "== building vigil"
swift build -c release --product vigil >/dev/null
vigil="$(swift build -c release --show-bin-path)/vigil"

work=$(mktemp -d)
swtpm_pid=""
controller_pid=""
cleanup() {
  [[ -n "$controller_pid" ]] && kill "$controller_pid" 2>/dev/null || true
  [[ -n "$swtpm_pid" ]] && kill "$swtpm_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(vigil_free_port_pair)
cp -r swtpm-fixtures/state "$work/state"
swtpm socket --tpm2 --tpmstate dir="$work/state" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
swtpm_pid=$!
export VIGIL_TCTI="swtpm:host=127.0.0.1,port=$port"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

echo; echo "== vigil tpm provision   (TPM at $VIGIL_TCTI)"
"$vigil" tpm provision
echo; echo "== vigil tpm provision   (again: nothing changes)"
"$vigil" tpm provision | tail -1
echo; echo "== vigil tpm info"
"$vigil" tpm info
nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo; echo "== vigil tpm quote --pcrs sha256:0,1,2,3,4,5,6,7 --nonce $nonce"
"$vigil" tpm quote --pcrs sha256:0,1,2,3,4,5,6,7 --nonce "$nonce" --out "$work/quote"
echo; echo "== tpm2_checkquote (tpm2-tools' verifier)"
tpm2_checkquote -u "$work/quote/ak.pem" -m "$work/quote/quote.msg" -s "$work/quote/quote.sig" \
  -f "$work/quote/quote.pcrs" -g sha256 -q "$nonce" >/dev/null
echo "tpm2_checkquote: the quote's signature, nonce and PCR digest verify."
echo; echo "== a quote checked against another nonce is refused"
if tpm2_checkquote -u "$work/quote/ak.pem" -m "$work/quote/quote.msg" -s "$work/quote/quote.sig" \
  -f "$work/quote/quote.pcrs" -g sha256 -q "00$nonce" >/dev/null 2>&1; then
  echo "UNEXPECTED: accepted" >&2; exit 1
fi
echo "tpm2_checkquote: refused, as it must be."

log=Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin
policy=policies/strict-secureboot-linux.yaml
echo; echo "== boot the simulator as a real machine: vigil tpm replay-log $(basename "$log")"
"$vigil" tpm replay-log "$log"
echo; echo "== the device collects evidence for the verifier's nonce"
nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
issued=$(date -u +%Y-%m-%dT%H:%M:%SZ)
"$vigil" tpm evidence --nonce "$nonce" --eventlog "$log" --out "$work/evidence.json"
echo; echo "== the security team's policy: vigil policy explain $policy"
"$vigil" policy explain "$policy"
echo; echo "== credential activation: is this AK in the TPM that owns this EK? (vigil ak challenge → tpm activate-credential → ak bind)"
# The verifier encrypts a secret to the EK (from its certificate) for the AK's Name; only that TPM can answer.
"$vigil" ak challenge --evidence "$work/evidence.json" --out "$work/challenge.json"
"$vigil" tpm activate-credential --challenge "$work/challenge.json" --out "$work/answer.bin"
"$vigil" ak bind --challenge "$work/challenge.json" --answer "$work/answer.bin" --out "$work/binding.json"
echo; echo "== without the binding, a genuine EK certificate next to the AK proves nothing:"
"$vigil" policy test "$policy" --evidence "$work/evidence.json" --nonce "$nonce" --nonce-issued-at "$issued" > "$work/unbound.txt" || true
if ! grep '^FAIL identity' "$work/unbound.txt"; then
  echo "UNEXPECTED: identity passed without credential activation" >&2; exit 1
fi
echo; echo "== vigil policy test $policy --evidence evidence.json --nonce (the verifier's) --nonce-issued-at $issued --ak-binding binding.json"
# The verifier supplies the nonce, when it issued it and the binding; nothing is taken from the evidence.
"$vigil" policy test "$policy" --evidence "$work/evidence.json" --nonce "$nonce" --nonce-issued-at "$issued" --ak-binding "$work/binding.json"

echo; echo "== a tampered boot: reboot, the same firmware and bootloaders, plus one unapproved measurement in PCR 4"
swtpm_ioctl --tcp 127.0.0.1:$((port + 1)) -i
"$vigil" tpm replay-log "$log" >/dev/null
TPM2TOOLS_TCTI="$VIGIL_TCTI" tpm2_pcrextend "4:sha256=$(printf 'rootkit-loader' | sha256sum | cut -d' ' -f1)"
nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$vigil" tpm evidence --nonce "$nonce" --eventlog "$log" --out "$work/tampered.json" >/dev/null
echo "== vigil policy test $policy --evidence tampered.json --nonce …"
if "$vigil" policy test "$policy" --evidence "$work/tampered.json" --nonce "$nonce" --nonce-issued-at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
     --ak-binding "$work/binding.json"; then
  echo "UNEXPECTED: the tampered boot was accepted" >&2; exit 1
fi
echo; echo "The tampered boot was refused; the verdict names the rule, the PCR and the event."

echo; echo "==================== the controller: three parties ===================="
echo "== reboot the simulator and boot it cleanly again"
swtpm_ioctl --tcp 127.0.0.1:$((port + 1)) -i
"$vigil" tpm replay-log "$log" >/dev/null
cport=$(vigil_free_port)
ctl="$work/controller"
echo; echo "== [controller] vigil controller serve --state-dir $ctl --listen 127.0.0.1:$cport"
"$vigil" controller serve --state-dir "$ctl" --listen "127.0.0.1:$cport" --log-level warning > "$work/controller.log" 2>&1 &
controller_pid=$!
for _ in $(seq 100); do grep -q '^database:' "$work/controller.log" 2>/dev/null && break; sleep 0.1; done
cat "$work/controller.log"
C=(--controller "https://127.0.0.1:$cport" --ca "$ctl/ca.pem")
T=("${C[@]}" --token-file "$ctl/admin-token")

echo; echo "== [security team] the vendor's EK CA as a bundle, a fleet policy that requires it, an enrollment token"
"$vigil" admin ek-ca add swtpm-vendor swtpm-fixtures/ca "${T[@]}"
cp policies/strict-secureboot-linux.yaml policies/base-hygiene.yaml "$work/"
cat > "$work/fleet-lab.yaml" <<'YAML'
id: fleet-lab
version: 1
description: The strict Secure Boot policy, with EK certificates that chain to the vendor bundle.
extends: strict-secureboot-linux
identity:
  ek_ca: swtpm-vendor
YAML
"$vigil" admin policy add fleet-lab "$work/fleet-lab.yaml" "${T[@]}"
"$vigil" admin policy assign fleet-lab --group lab "${T[@]}"
token=$("$vigil" admin enroll-token create --group lab --expires 10m "${T[@]}")
echo "enrollment token: ${token:0:12}… (one use, 10 minutes)"

echo; echo "== [device] vigil device onboard --enroll-token …   (EK chain, credential activation, TPM2_Certify of the device key)"
"$vigil" device onboard "${C[@]}" --enroll-token "$token" --json | tee "$work/onboard.json"
device=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["device_id"])' "$work/onboard.json")
head -c 64 /dev/urandom > "$work/disk.key"
"$vigil" admin secret put disk-key --device "$device" --file "$work/disk.key" "${T[@]}"

echo; echo "== [device] vigil device attest --eventlog $(basename "$log")"
"$vigil" device attest "${C[@]}" --eventlog "$log" --json > "$work/attest.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("PASS" if d["pass"] else "FAIL", d["device_id"]); open(sys.argv[2],"w").write(d["result"])' "$work/attest.json" "$work/result.jwt"
echo "== [relying party] vigil result verify (offline, with result-signing.pub.pem only)"
"$vigil" result verify "@$work/result.jwt" --key "$ctl/result-signing.pub.pem"
echo "== [device] vigil device fetch-secret disk-key   (wrapped to this TPM's EK and AK)"
"$vigil" device fetch-secret disk-key "${C[@]}" --out "$work/disk.key.fetched"
cmp "$work/disk.key" "$work/disk.key.fetched" && echo "the fetched key equals the one the security team put"

echo; echo "== the same unapproved measurement in PCR 4, then attest again"
TPM2TOOLS_TCTI="$VIGIL_TCTI" tpm2_pcrextend "4:sha256=$(printf 'rootkit-loader' | sha256sum | cut -d' ' -f1)"
if "$vigil" device attest "${C[@]}" --eventlog "$log"; then
  echo "UNEXPECTED: the controller passed a tampered boot" >&2; exit 1
fi
echo "== [device] fetch-secret after the fail"
if "$vigil" device fetch-secret disk-key "${C[@]}" --out "$work/refused.key"; then
  echo "UNEXPECTED: a secret was released after a failed attestation" >&2; exit 1
fi
echo; echo "== [security team] vigil admin device show $device"
"$vigil" admin device show "$device" "${T[@]}"
echo "== [security team] vigil admin audit verify"
"$vigil" admin audit verify "${T[@]}"
echo; echo "The controller passed the clean boot, released the key to that TPM only, and refused both after the tampered boot."

echo; echo "==================== the node agent: the gate, the network stack and a workload ===================="
if [[ $(id -u) -ne 0 ]]; then
  echo "vigil demo needs root (network namespaces, nftables, tmpfs, a loop-mounted ext4): sudo $vigil demo" >&2
  exit 1
fi
"$vigil" demo
