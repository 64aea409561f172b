#!/usr/bin/env bash
# The vault's costs, as root on this machine: `vigil vault unlock` on swtpm (the whole command: TPM connection,
# unseal in a salted policy session, key added to the kernel), and fscrypt read/write throughput against the same
# ext4 filesystem without encryption, interleaved (plain, encrypted, plain, encrypted, …) on one loop-mounted image.
#   scripts/benchmark-vault.sh [ROUNDS] [MiB per file]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
vigil_install_packages
vigil_require_swift
rounds=${1:-5}; mib=${2:-256}
swift build -c release --product vigil >/dev/null
vigil="$(swift build -c release --show-bin-path)/vigil"
work=$(mktemp -d /tmp/vigil-vault-bench.XXXXXX)
swtpm_pid=""
cleanup() {
  umount "$work/mnt" 2>/dev/null || true
  [[ -n "$swtpm_pid" ]] && kill "$swtpm_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cp -r swtpm-fixtures/state "$work/state"
port=$(vigil_free_port_pair)
swtpm socket --tpm2 --tpmstate dir="$work/state" --server type=tcp,port="$port",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear &
swtpm_pid=$!
export VIGIL_TCTI="swtpm:host=127.0.0.1,port=$port"
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
"$vigil" tpm provision >/dev/null
"$vigil" tpm replay-log Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin >/dev/null
truncate -s $((mib * 4 + 256))M "$work/fs.img"
mkfs.ext4 -q -F -O encrypt "$work/fs.img"
mkdir -p "$work/mnt"; mount -o loop "$work/fs.img" "$work/mnt"
mkdir "$work/mnt/vault" "$work/mnt/plain"
"$vigil" vault create "$work/mnt/vault" >/dev/null

echo "== vigil vault unlock (whole command, swtpm), $((rounds * 4)) runs"
times=()
for _ in $(seq $((rounds * 4))); do
  "$vigil" vault lock "$work/mnt/vault" >/dev/null
  t0=$(date +%s%N); "$vigil" vault unlock "$work/mnt/vault" >/dev/null; t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "unlock: median %.1f ms, min %.1f ms, max %.1f ms\n", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'

echo "== vigil vault unlock --measure: TPM commands on the unseal path, unseal and key-install time"
for _ in $(seq "$rounds"); do
  "$vigil" vault lock "$work/mnt/vault" >/dev/null
  "$vigil" vault unlock --measure "$work/mnt/vault" | grep -v '^vault'
done

echo "== LUKS2 (file-backed image): unlock up to the volume key (activation needs device-mapper)"
"$vigil" vault create --backend luks2 --size 32M "$work/luks.img" >/dev/null
for _ in $(seq "$rounds"); do
  "$vigil" vault unlock --measure "$work/luks.img" 2>/dev/null | grep -v '^vault' || true
done

echo "== throughput, $mib MiB per file, plain and encrypted interleaved, page cache dropped before each read"
for r in $(seq "$rounds"); do
  for d in plain vault; do
    sync; echo 3 > /proc/sys/vm/drop_caches
    w=$(dd if=/dev/zero of="$work/mnt/$d/f" bs=1M count="$mib" conv=fsync 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
    sync; echo 3 > /proc/sys/vm/drop_caches
    rd=$(dd if="$work/mnt/$d/f" of=/dev/null bs=1M 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
    echo "round $r $d: write $w, read $rd"
    rm -f "$work/mnt/$d/f"
  done
done
