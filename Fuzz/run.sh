#!/usr/bin/env bash
# Builds the libFuzzer targets (Swift, -sanitize=fuzzer,address) and runs each for SECONDS (default 600),
# seeded from the test fixtures. Fails if any input crashes, hangs (>10 s) or allocates over 2 GiB RSS /
# 512 MiB in one malloc. Crashing inputs land in Fuzz/artifacts/.
#   Fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(FuzzEventLog FuzzAttest FuzzSignature FuzzPublic FuzzPolicy FuzzEvidence FuzzControllerAPI FuzzVault FuzzAuthenticode FuzzNode FuzzEVE)

swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -Onone >/dev/null
bin=$(swift build -c release --show-bin-path)
fixtures=../Tests/AttestTests/Fixtures
mkdir -p corpus artifacts
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  case $t in
    FuzzEventLog) cp $fixtures/eventlogs/*.bin "corpus/$t/" ;;
    FuzzAttest) cp $fixtures/quotes/*/*attest* $fixtures/quotes/keylime_checkquote/pcrs.tpm2tools.bin "corpus/$t/" ;;
    FuzzSignature) cp $fixtures/quotes/*/*sig* "corpus/$t/" ;;
    FuzzPublic) cp $fixtures/quotes/gce_cos85_nonce9009/*.tpmt_public.bin $fixtures/ekcerts/* "corpus/$t/" ;;
    FuzzPolicy) cp ../policies/*.yaml ../policies/captured/*.yaml "corpus/$t/" ;;
    FuzzEvidence) cp seeds/FuzzEvidence/* "corpus/$t/" ;;
    FuzzControllerAPI) cp seeds/FuzzControllerAPI/* "corpus/$t/" ;;
    FuzzVault) cp seeds/FuzzVault/* "corpus/$t/" ;;
    FuzzNode) cp seeds/FuzzNode/* "corpus/$t/" ;;
    FuzzEVE) cp seeds/FuzzEVE/* "corpus/$t/" ;;
    FuzzAuthenticode) cp /usr/lib/systemd/boot/efi/*.efi* /usr/lib/shim/*.efi "corpus/$t/" ;;
  esac
done
status=0
for t in "${targets[@]}"; do
  echo "== $t for ${seconds}s"
  if ! "$bin/$t" "corpus/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
       -max_len=131072 -artifact_prefix="artifacts/$t-" -print_final_stats=1 2>"artifacts/$t.log"; then
    status=1
    echo "FAILED: see Fuzz/artifacts/$t.log"
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "artifacts/$t.log" || tail -3 "artifacts/$t.log"
done
exit $status
