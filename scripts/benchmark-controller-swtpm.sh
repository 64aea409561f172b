#!/usr/bin/env bash
# Full attestations per second through the controller's HTTPS API (nonce, quote, evidence, verification,
# policy, verdict and audit entry stored, signed result returned), on SQLite and on PostgreSQL, interleaved
# round by round on the same machine and the same devices. Each device is its own swtpm (a blank TPM: its own
# EK and AK), booted as the GCE RHEL 8 machine and admitted by EK fingerprint; the load generator is
# `vigil device load`. CPU seconds are read from /proc for every party: the controller, the database, the
# TPMs and the load generator, so each one's share is stated.
#   scripts/benchmark-controller-swtpm.sh [SECONDS per round] [DEVICES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/postgres.sh
vigil_install_packages
vigil_require_swift
seconds=${1:-10}; devices=${2:-4}; rounds=${3:-2}

swift build -c release --product vigil >/dev/null
vigil="$(swift build -c release --show-bin-path)/vigil"
work=$(mktemp -d /tmp/vigil-bench.XXXXXX)
pids=()
controller_pid=""
cleanup() {
  [[ -n "$controller_pid" ]] && kill "$controller_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  vigil_postgres_stop
  rm -rf "$work"
}
trap cleanup EXIT
vigil_postgres_start >/dev/null
log=Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin
hz=$(getconf CLK_TCK)

tctis=()
swtpm_pids=()
for i in $(seq "$devices"); do
  mkdir -p "$work/tpm$i"
  port=$(vigil_free_port_pair)
  swtpm socket --tpm2 --tpmstate dir="$work/tpm$i" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
  pids+=($!); swtpm_pids+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  t="swtpm:host=127.0.0.1,port=$port"
  VIGIL_TCTI=$t "$vigil" tpm provision >/dev/null
  VIGIL_TCTI=$t "$vigil" tpm replay-log "$log" >/dev/null
  tctis+=("$t")
done
tcti_args=(); for t in "${tctis[@]}"; do tcti_args+=(--tcti "$t"); done
# The strict Secure Boot policy, every rule of it, except that these blank TPMs have no EK certificate.
cp policies/strict-secureboot-linux.yaml policies/base-hygiene.yaml "$work/"
cat > "$work/bench.yaml" <<'YAML'
id: bench
version: 1
extends: strict-secureboot-linux
identity:
  ek_certificate: optional
YAML

round() {  # backend round
  local backend=$1 n=$2
  local dir="$work/ctl-$backend-$n" cport db
  cport=$(vigil_free_port)
  if [[ $backend == sqlite ]]; then db="sqlite:$dir/controller.db"; else
    local name="bench_${n}_$RANDOM"
    local as=(); [[ $(id -u) -eq 0 ]] && as=(runuser -u postgres --)
    "${as[@]}" "$VIGIL_PG_BIN/psql" -h 127.0.0.1 -p "${VIGIL_TEST_POSTGRES##*:}" -U postgres -qc "CREATE DATABASE $name" >/dev/null
    db="$VIGIL_TEST_POSTGRES/$name"
  fi
  "$vigil" controller serve --state-dir "$dir" --listen "127.0.0.1:$cport" --db "$db" --log-level error \
    > "$work/ctl.log" 2>&1 &
  controller_pid=$!
  for _ in $(seq 100); do grep -q '^database:' "$work/ctl.log" 2>/dev/null && break; sleep 0.1; done
  local C=(--controller "https://127.0.0.1:$cport" --ca "$dir/ca.pem")
  local T=("${C[@]}" --token-file "$dir/admin-token")
  "$vigil" admin policy add bench "$work/bench.yaml" "${T[@]}" >/dev/null
  "$vigil" admin policy assign bench --group bench "${T[@]}" >/dev/null
  for t in "${tctis[@]}"; do
    fp=$(VIGIL_TCTI=$t "$vigil" device id --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ek_fingerprint"])')
    "$vigil" admin device allow --ek-fingerprint "$fp" --group bench "${T[@]}" >/dev/null
    VIGIL_TCTI=$t "$vigil" device onboard "${C[@]}" >/dev/null
  done
  local pg_pids=()
  if [[ $backend == postgres ]]; then mapfile -t pg_pids < <(pgrep -f "$VIGIL_PG_DIR" || true); fi
  local c0 s0 d0
  c0=$(vigil_cpu_ticks "$controller_pid"); s0=$(vigil_cpu_ticks "${swtpm_pids[@]}"); d0=$(vigil_cpu_ticks "${pg_pids[@]}" $(pgrep -f "postgres: " || true))
  "$vigil" device load "${C[@]}" "${tcti_args[@]}" --eventlog "$log" --seconds "$seconds" --json > "$work/load.json"
  local c1 s1 d1
  c1=$(vigil_cpu_ticks "$controller_pid"); s1=$(vigil_cpu_ticks "${swtpm_pids[@]}"); d1=$(vigil_cpu_ticks "${pg_pids[@]}" $(pgrep -f "postgres: " || true))
  python3 - "$work/load.json" "$backend" "$n" "$(( c1 - c0 ))" "$(( s1 - s0 ))" "$(( d1 - d0 ))" "$hz" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); backend, n = sys.argv[2], sys.argv[3]
controller, tpms, db, hz = (int(x) for x in sys.argv[4:8])
c, t, d, g = controller / hz, tpms / hz, db / hz, r["generator_cpu_seconds"]
total = c + t + d + g
print(f"{backend:8} round {n}: {r['per_second']:6.1f} attestations/s ({r['attestations']} in {r['seconds']:.1f} s, "
      f"{r['devices']} devices; p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms) | CPU s: controller {c:.1f}, "
      f"database {d:.1f}, swtpm {t:.1f}, load generator {g:.1f} ({100 * g / total:.0f}% of all CPU used); "
      f"controller CPU per attestation {1000 * c / max(1, r['attestations']):.2f} ms")
PY
  kill "$controller_pid"; wait "$controller_pid" 2>/dev/null || true; controller_pid=""
}

echo "== $devices devices (swtpm each), ${seconds}s per round, $rounds rounds, SQLite and PostgreSQL interleaved"
for n in $(seq "$rounds"); do
  round sqlite "$n"
  round postgres "$n"
done
