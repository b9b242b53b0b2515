#!/usr/bin/env bash
# Installs what is needed, builds hoody-snapd, boots the ZFS test VM and runs the daemon on a
# pool made from a sparse file, while the client walks through create, list, restore and
# delete, printing what a user would see.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bash tests/setup.sh
cargo build --workspace --locked
results="$repo/target/demo"
rm -rf "$results"
# qemu reopens its standard output, which truncates a file that it was redirected to, so its
# output goes through a pipe.
bash tests/vm.sh "$results" tests/guest/demo.sh "$repo" "$repo/target/debug" 2>&1 | cat
