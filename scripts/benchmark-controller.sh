#!/usr/bin/env bash
# The controller at fleet scale (issue 12): `vigil loadtest` (simulated devices: software keys, PCRs replayed from
# the GCE RHEL 8 log, which every attestation carries) against SQLite with one instance, PostgreSQL with one, and
# PostgreSQL with two, and the transport floor (floor-1: the same loadtest with --transport-floor, two GET /healthz per
# "attestation" on a SQLite instance: what the HTTPS stack alone carries), the configurations interleaved round by
# round on this machine, the load generator on the same machine. CPU seconds are read from /proc for the controller(s), PostgreSQL and the generator, so each one's share
# is stated; the per-stage means come from the instances' /metrics.
#   scripts/benchmark-controller.sh [SECONDS per run] [DEVICES] [CONCURRENCY] [ROUNDS]
# The instances run with per-device limits raised (--device-nonces-per-minute, --evidence-burst): each simulated
# device attests several times a second, far above what the defaults allow a real one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/postgres.sh
vigil_install_packages
vigil_require_swift
seconds=${1:-15}; devices=${2:-512}; concurrency=${3:-32}; rounds=${4:-2}

swift build -c release --product vigil >/dev/null
vigil="$(swift build -c release --show-bin-path)/vigil"
work=$(mktemp -d /tmp/vigil-bench.XXXXXX)
controller_pids=()
cleanup() {
  for p in "${controller_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  vigil_postgres_stop
  rm -rf "$work"
}
trap cleanup EXIT
vigil_postgres_start >/dev/null
log=Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin
hz=$(getconf CLK_TCK)
cp policies/strict-secureboot-linux.yaml policies/base-hygiene.yaml "$work/"
cat > "$work/bench.yaml" <<'YAML'
id: bench
version: 1
extends: strict-secureboot-linux
identity:
  ek_certificate: optional
YAML

run() {  # run CONFIG ROUND: CONFIG is sqlite-1, postgres-1, postgres-2 or floor-1
  local config=$1 n=$2 backend=${1%-*} instances=${1#*-}
  local dir="$work/$config-$n" db urls=() i
  mkdir -p "$dir"
  local floor=()
  if [[ $backend == floor ]]; then floor=(--transport-floor); fi
  if [[ $backend != postgres ]]; then db="sqlite:$dir/a/controller.db"; else
    local name="bench_${n}_${instances}_$RANDOM"
    local as=(); [[ $(id -u) -eq 0 ]] && as=(runuser -u postgres --)
    "${as[@]}" "$VIGIL_PG_BIN/psql" -h 127.0.0.1 -p "${VIGIL_TEST_POSTGRES##*:}" -U postgres -qc "CREATE DATABASE $name" >/dev/null
    db="$VIGIL_TEST_POSTGRES/$name"
  fi
  controller_pids=()
  for i in $(seq "$instances"); do
    local state="$dir/a" port
    if [[ $i -gt 1 ]]; then state="$dir/i$i"; cp -a "$dir/a" "$state"; fi  # one signing identity
    port=$(vigil_free_port)
    "$vigil" controller serve --state-dir "$state" --listen "127.0.0.1:$port" --db "$db" --log-level error \
      --device-nonces-per-minute 1000000 --evidence-burst 1000000 --max-in-flight 4096 > "$dir/serve-$i.log" 2>&1 &
    controller_pids+=($!)
    for _ in $(seq 200); do grep -q '^database:' "$dir/serve-$i.log" 2>/dev/null && break; sleep 0.1; done
    urls+=("https://127.0.0.1:$port")
  done
  local T=(--ca "$dir/a/ca.pem" --token-file "$dir/a/admin-token")
  "$vigil" admin policy add bench "$work/bench.yaml" --controller "${urls[0]}" "${T[@]}" >/dev/null
  "$vigil" admin policy assign bench --group loadtest --controller "${urls[0]}" "${T[@]}" >/dev/null
  local c0 d0 c1 d1 pg_user
  pg_user=$([[ $(id -u) -eq 0 ]] && echo postgres || id -un)
  # PostgreSQL's processes (its backends come and go; those alive at each end are summed).
  c0=$(vigil_cpu_ticks "${controller_pids[@]}"); d0=$(vigil_cpu_ticks $(pgrep -u "$pg_user" postgres || true))
  local joined; joined=$(IFS=,; echo "${urls[*]}")
  "$vigil" loadtest --controller "$joined" "${T[@]}" --devices "$devices" --duration "$seconds" \
    --concurrency "$concurrency" --eventlog "$log" "${floor[@]}" --json > "$dir/load.json"
  c1=$(vigil_cpu_ticks "${controller_pids[@]}"); d1=$(vigil_cpu_ticks $(pgrep -u "$pg_user" postgres || true))
  python3 - "$dir/load.json" "$config" "$n" "$(( c1 - c0 ))" "$(( d1 - d0 ))" "$hz" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); config, n = sys.argv[2], sys.argv[3]
controller, db, hz = (int(x) for x in sys.argv[4:7])
c, d, g = controller / hz, db / hz, r["generator_cpu_s"]
total = c + d + g
a = max(1, r["attestations"])
stages = r["stages"]
server = ", ".join(f"{k[len('controller_'):-3]} {v:.3f}" for k, v in sorted(stages.items()) if k.startswith("controller_"))
print(f"{config:10} round {n}: {r['attestations_per_s']:7.1f} attestations/s ({r['attestations']} in {r['seconds']:.1f} s, "
      f"{r['devices']} devices, concurrency {r['concurrency']}; p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, "
      f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms; errors {r['errors'] or 'none'})")
print(f"{'':10}          CPU s: controller {c:.1f}, PostgreSQL {d:.1f}, load generator {g:.1f} "
      f"({100 * g / max(total, 0.001):.0f}% of the CPU used); per attestation: controller {1000 * c / a:.2f} ms, "
      f"database {1000 * d / a:.2f} ms, generator {1000 * g / a:.2f} ms")
print(f"{'':10}          controller stages (mean ms): {server}")
PY
  for p in "${controller_pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  controller_pids=()
}

echo "== $devices simulated devices, concurrency $concurrency, ${seconds}s per run, $rounds rounds; sqlite-1, postgres-1, postgres-2, floor-1 interleaved"
for n in $(seq "$rounds"); do
  for config in sqlite-1 postgres-1 postgres-2 floor-1; do run "$config" "$n"; done
done
