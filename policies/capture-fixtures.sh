#!/usr/bin/env bash
# Regenerates policies/captured/ from the fixture event logs (golden capture).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product vigil >/dev/null
vigil="$(swift build --show-bin-path)/vigil"
for f in Tests/AttestTests/Fixtures/eventlogs/*.bin; do
  n=$(basename "$f" .bin)
  "$vigil" policy from-evidence --eventlog "$f" --id "captured-$n" > "policies/captured/$n.yaml"
done
