#!/usr/bin/env bash
# Runs every Vigil test on a fresh Debian 12 machine: installs the apt packages it needs, builds in
# Swift 6 mode with warnings as errors, and runs the Swift Testing suites (the TPM suites start their
# own swtpm per test). With CI=true, tests that need swtpm, tpm2-tools or root fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
vigil_install_packages
vigil_require_swift

echo "== formatting: one configuration (.swift-format, 120 columns), checked (apply with: swift format format -i -r --configuration .swift-format Sources Tests Fuzz/Sources Fuzz/Package.swift Package.swift)"
swift format lint --strict -r --configuration .swift-format Sources Tests Fuzz/Sources Fuzz/Package.swift Package.swift
echo "== every public declaration of Attest and Policy has a doc comment"
python3 scripts/check-docs.py Sources/Attest Sources/Policy Sources/ControllerProtocol Sources/Controller Sources/ControllerClient \
  Sources/Node/Agent Sources/Node/Plugins Sources/Node/Workloads Sources/Node/Network
echo "== swift build (warnings are errors)"
swift build --build-tests -Xswiftc -warnings-as-errors
echo "== PostgreSQL for the controller's second backend (the same suite runs on SQLite and PostgreSQL)"
source scripts/postgres.sh
command -v python3 >/dev/null 2>&1 || { VIGIL_APT_PACKAGES+=(python3); vigil_install_packages; }
vigil_postgres_start
trap vigil_postgres_stop EXIT
echo "== a headless browser for the dashboard's tests (chromium, chromium-driver, selenium)"
vigil_install_browser
echo "== swift test"
# Many tests provoke TPM errors on purpose; libtss2 would print each to stderr. Set TSS2_LOG yourself to see them.
export TSS2_LOG=${TSS2_LOG:-all+none}
# The test run has a deadline (VIGIL_TEST_TIMEOUT seconds; a normal run takes well under a minute). A run that
# passes it is a failure with a diagnosis (the tests still running, the processes, every thread's stack)
# rather than a CI job that silently runs out of time.
bash scripts/run-with-watchdog.sh "${VIGIL_TEST_TIMEOUT:-1200}" swift test --skip-build
