#!/usr/bin/env bash
# The node agent's costs, as root on this machine, from `vigil demo --json --measure-peer` run ROUNDS times
# (release build; a fresh swtpm, controller and vault each round):
#   start → gate open and start → first workload spawned (an already provisioned and onboarded device, local
#   controller), the TPM commands on that path, and the gate's closing after a failed re-attestation (plugins
#   stopped, secrets wiped, vault locked). The peer, in the same round just before the node starts: the same
#   attest → unlock → secret path as three CLI processes.
#   scripts/benchmark-node.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
vigil_install_packages
vigil_require_swift
rounds=${1:-5}
swift build -c release --product vigil >/dev/null
vigil="$(swift build -c release --show-bin-path)/vigil"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$rounds"); do
  "$vigil" demo --json --measure-peer 2>/dev/null | tr -d '\n' >> "$out"
  echo >> "$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = all(r["attested"] and r["vault_unlocked"] and r["workload_ran"] and r["tamper_detected"] and r["plugins_stopped"] and r["vault_locked"] for r in rows)
def show(key, unit="ms"):
    v = [r[key] for r in rows if r.get(key) is not None]
    print(f"{key}: median {statistics.median(v):.0f} {unit}, min {min(v):.0f}, max {max(v):.0f}  ({len(v)} rounds)")
for k in ["start_to_gate_ms", "start_to_first_workload_ms", "close_ms", "peer_cli_ms"]: show(k)
show("tpm_commands_to_gate", "commands")
print("every round's demo summary all true:", ok)
PY
