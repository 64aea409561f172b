#!/usr/bin/env bash
# Regenerates Sources/EVEAPI/Generated/*.pb.swift from the vendored EVE protobuf files (Sources/EVEAPI/proto).
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift; the plugin is built from the swift-protobuf
# checkout this package resolves when it is not on PATH (a few minutes, once). CI never runs this: the output
# is committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v protoc >/dev/null || { echo "protoc is missing: apt-get install protobuf-compiler" >&2; exit 1; }
plugin=$(command -v protoc-gen-swift || true)
if [[ -z "$plugin" ]]; then
  swift package resolve >/dev/null
  checkout="$root/.build/checkouts/swift-protobuf"
  swift build -c release --product protoc-gen-swift --package-path "$checkout" --scratch-path "$root/.build-protoc-gen-swift" >&2
  plugin="$root/.build-protoc-gen-swift/release/protoc-gen-swift"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r Sources/EVEAPI/proto/. "$work/"
# protoc-gen-validate's options do not change the wire format; the code enforces the same limits.
python3 - "$work/register/register.proto" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = text.replace('import "validate/validate.proto";', '')
text = re.sub(r'\s*\[\s*\(validate\.rules\).*?\}\s*\]', '', text, flags=re.S)
assert '(validate.' not in text and 'validate.proto' not in text, 'validate options left in register.proto'
open(path, 'w').write(text)
PY
out="$root/Sources/EVEAPI/Generated"
rm -f "$out"/*.pb.swift
protos=(auth/auth.proto attest/attest.proto certs/certs.proto register/register.proto eveuuid/eveuuid.proto
        evecommon/evecommon.proto evecommon/acipherinfo.proto)
protoc --plugin=protoc-gen-swift="$plugin" -I "$work" \
  --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores --swift_opt=UseAccessLevelOnImports=true \
  --swift_out="$out" "${protos[@]/#/$work/}"
# protoc-gen-swift marks its files `swift-format-ignore-file`: the formatting check leaves them alone.
echo "generated: $(ls "$out")"
