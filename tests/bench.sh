#!/usr/bin/env bash
# Benchmarks hoody-snapd against the `zfs` command on the same pool, in the test VM, and writes
# docs/benchmark.md. Not part of the test suite: it takes about 15 minutes under the VM's
# software emulation, and its ratios are reported, not asserted.
#
# Usage: sudo bash tests/bench.sh   (after tests/setup.sh, which tests/run.sh also runs)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

cargo build --release --locked -p hoody-snapd -p hoody-snap
cargo build --release --locked -p hoody-snapd-tests --bin bench

results="$repo/target/bench"
rm -rf "$results"
mkdir -p "$results"
HOODY_VM_TIMEOUT=3600 bash tests/vm.sh "$results" tests/guest/bench.sh "$repo" "$repo/target/release" 2>&1 | cat

if [ "$(cat "$results/status" 2>/dev/null)" != 0 ] || [ ! -f "$results/benchmark.md" ]; then
    echo "bench: the benchmark did not finish; see $results/daemon.log" >&2
    exit 1
fi

{
    cat docs/benchmark-intro.md
    echo
    echo "## Last run"
    echo
    echo "Run on $(date -u +%Y-%m-%d) with \`sudo bash tests/bench.sh\`."
    echo
    echo "- host: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), kernel $(uname -r)"
    sed 's/^/- /' "$results/machine"
    echo "- qemu: $(qemu-system-x86_64 --version | head -n 1), software emulation (TCG)"
    echo
    cat "$results/benchmark.md"
} >docs/benchmark.md
echo "bench: wrote docs/benchmark.md"
