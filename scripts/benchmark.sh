#!/usr/bin/env bash
# Produces the figures in BENCHMARKS.md on this machine: Vigil's in-process verifier (release build)
# next to the peers on the same inputs in the same run — tpm2_eventlog (what Keylime runs per
# attestation) and tpm2_checkquote — timed with hyperfine. Prints a Markdown section.
#   scripts/benchmark.sh [SECONDS_PER_MEASUREMENT]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
vigil_install_packages
vigil_require_swift
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null; }
seconds=${1:-2}

swift build -c release --product vigil >/dev/null
vigil="$(swift build -c release --show-bin-path)/vigil"
res=Sources/VigilBenchmark/Resources
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every fixture event log; tpm2_eventlog runs as a process interleaved with Vigil's in-process rounds on each log,
# so machine noise hits both alike (a log it cannot read is recorded as such).
logs=()
for log in Tests/AttestTests/Fixtures/eventlogs/*.bin; do logs+=(--eventlog "$log"); done
"$vigil" benchmark --seconds "$seconds" --json --peer-eventlog "$(command -v tpm2_eventlog)" "${logs[@]}" > "$work/vigil.json"

# Device side: a private swtpm from the committed fixture state; GetRandom through Vigil's TPM actor vs bare
# Esys_GetRandom on the same simulator.
cp -r swtpm-fixtures/state "$work/swtpm"
port=$(python3 -c 'import random; print(random.randrange(10000, 30000, 2))')
swtpm socket --tpm2 --tpmstate dir="$work/swtpm" --server type=tcp,port=$port,bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
swtpm_pid=$!
trap 'kill $swtpm_pid 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
"$vigil" benchmark --tpm --tcti "swtpm:host=127.0.0.1,port=$port" --seconds "$seconds" --json > "$work/tpm.json"
nonce=$(printf vigil-benchmark | xxd -p)
hyperfine -N --warmup 5 --runs 100 --export-json "$work/checkquote.json" \
  "tpm2_checkquote -u $res/quote-ak.pem -m $res/quote.msg -s $res/quote.sig -f $res/quote.pcrs -g sha256 -q $nonce" >/dev/null 2>&1
hyperfine -N --warmup 5 --runs 100 --export-json "$work/vigilverify.json" \
  "$vigil quote verify --ak $res/quote-ak.pem --message $res/quote.msg --signature $res/quote.sig --pcrs $res/quote.pcrs --nonce $nonce" >/dev/null 2>&1

python3 - "$work" <<'PY'
import json, os, sys, platform, subprocess
w = sys.argv[1]
v = json.load(open(os.path.join(w, "vigil.json")))
def median_ms(name):
    return json.load(open(os.path.join(w, name)))["results"][0]["median"] * 1000
print(f"Machine: {v['machine']}, {platform.system()} {platform.release()}")
print()
print("| event log | size | parse + replay (µs) | tpm2_eventlog, interleaved (ms) | speed-up | verify log + facts (µs) | policy evaluation (µs) |")
print("|---|---:|---:|---:|---:|---:|---:|")
peer = v.get("tpm2_eventlog_ms") or {}
for name, us in sorted(v["eventlog_us"].items()):
    size = os.path.getsize(os.path.join("Tests/AttestTests/Fixtures/eventlogs", name))
    prep, ev = v["evidence_prepare_us"].get(name, 0), v["policy_eval_us_by_log"].get(name, 0)
    if name in peer:
        print(f"| {name} | {size/1024:.1f} KiB | {us:.1f} | {peer[name]:.2f} | {peer[name]*1000/us:.0f}× | {prep:.1f} | {ev:.1f} |")
    else:
        print(f"| {name} | {size/1024:.1f} KiB | {us:.1f} | fails | — | {prep:.1f} | {ev:.1f} |")
print(f"| throughput | | {v['eventlog_mb_per_s']:.0f} MB/s | | |")
print()
q, p = v["quote_verify_per_s"], v["p256_verify_per_s"]
print("| quote check | rate | per check |")
print("|---|---:|---:|")
print(f"| Vigil `QuoteVerifier` (scheme, signature, decode, qualifiedSigner, nonce, selection, PCR digest), interleaved | {q:.0f} /s | {1e6/q:.1f} µs |")
print(f"| raw P-256 ECDSA verify, same signature and bytes, same library | {p:.0f} /s | {1e6/p:.1f} µs |")
print(f"| overhead of the full check over the bare signature check | {v['quote_overhead_percent']:.1f} % | |")
print(f"| `tpm2_checkquote` process (median) | | {median_ms('checkquote.json'):.2f} ms |")
print(f"| `vigil quote verify` process (median) | | {median_ms('vigilverify.json'):.2f} ms |")
print()
print(f"Policy evaluation (`PolicyEngine.evaluate`, median), slowest log: {v['policy_eval_us']:.1f} µs on {v['policy_eval_log']} "
      f"with {v['policy_allowed_digests']} allowed boot-application digests, PCR 0–7 replay rules, Secure Boot, "
      f"kernel command-line and forbidden-event rules.")
print()
t = json.load(open(os.path.join(w, "tpm.json")))
print(f"| TPM2_GetRandom on swtpm (median of {t['rounds']} rounds × {t['commands_per_round']}) | per command |")
print("|---|---:|")
print(f"| through Vigil's `TPM` actor (event-loop hop, error mapping, TCTIDeadline) | {t['vigil_getrandom_us']:.1f} µs |")
print(f"| bare `Esys_GetRandom` on the same simulator (peer) | {t['esapi_getrandom_us']:.1f} µs |")
print(f"| Vigil's cost over bare ESAPI | {t['overhead_percent']:.1f} % |")
PY
