#!/usr/bin/env bash
# Installs what Vigil needs on Debian 12, only when something is missing. Sourced by demo.sh and test.sh.
set -euo pipefail

VIGIL_APT_PACKAGES=(libtss2-dev libsqlite3-dev libcryptsetup-dev cryptsetup-bin libssl-dev libtpms-dev swtpm swtpm-tools tpm2-tools pkg-config openssl pesign sbsigntool shim-unsigned systemd-boot-efi nftables iproute2 zlib1g-dev)

vigil_missing_packages() {
  local missing=()
  for p in "${VIGIL_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

vigil_install_packages() {
  local missing
  missing=$(vigil_missing_packages)
  [[ -z "$missing" ]] && return 0
  echo "== installing: $missing"
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# The dashboard's browser tests: Debian's chromium and its WebDriver, and selenium from PyPI.
vigil_install_browser() {
  VIGIL_APT_PACKAGES+=(chromium chromium-driver)
  python3 -m pip --version >/dev/null 2>&1 || VIGIL_APT_PACKAGES+=(python3-pip)
  vigil_install_packages
  python3 -c "import selenium" 2>/dev/null && return 0
  # Debian's own python3 refuses pip outside a virtual environment (PEP 668) unless told.
  python3 -m pip install -q --disable-pip-version-check selenium 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages selenium
}

vigil_require_swift() {
  if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then export PATH="/opt/swift/usr/bin:$PATH"; else
      echo "swift (6.2 or newer) is not on PATH; install the Swift toolchain from swift.org" >&2; exit 1
    fi
  fi
}

# CPU clock ticks (user + system) of the given pids, summed (those gone are skipped); the benchmarks' CPU shares.
vigil_cpu_ticks() {
  local sum=0 p f
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    f=$(sed 's/^.*) //' "/proc/$p/stat")
    set -- $f
    sum=$((sum + ${12} + ${13}))
  done
  echo $sum
}

# A free TCP port on 127.0.0.1.
vigil_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A free pair of ports P, P+1 (the swtpm TCTI uses port+1 for the control channel).
vigil_free_port_pair() {
  python3 - <<'PY'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        s.close(); t.close()
PY
}
