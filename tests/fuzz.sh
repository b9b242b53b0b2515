#!/usr/bin/env bash
# Runs each cargo-fuzz target of hoody-snapd (fuzz/fuzz_targets) with libFuzzer for SECONDS
# seconds (default 60). Installs cargo-fuzz when it is missing. A crash stops the run, and
# libFuzzer writes the input to fuzz/artifacts/TARGET/.
#
# Usage: tests/fuzz.sh [SECONDS]
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
# cargo-fuzz passes -Z flags to rustc (sanitizers), which a stable toolchain accepts with
# RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
mkdir -p fuzz/corpus
for target in names properties config journal; do
    echo "fuzz: $target for ${seconds}s"
    cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=4096
done
