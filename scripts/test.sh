#!/usr/bin/env bash
# Runs every Vigil test on a fresh Debian 12 machine: installs the apt packages it needs, builds in
# Swift 6 mode with warnings as errors, and runs the Swift Testing suites (the TPM suites start their
# own swtpm per test). With CI=true, tests that need swtpm, tpm2-tools or root fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
vigil_install_packages
vigil_require_swift

echo "== swift build (warnings are errors)"
swift build --build-tests -Xswiftc -warnings-as-errors
echo "== swift test"
# Many tests provoke TPM errors on purpose; libtss2 would print each to stderr. Set TSS2_LOG yourself to see them.
export TSS2_LOG=${TSS2_LOG:-all+none}
swift test --skip-build
