#!/usr/bin/env bash
# Runs inside the test VM: makes the pool, starts the bus and a release build of the daemon,
# and runs the benchmark, which writes RESULTS/benchmark.md and RESULTS/benchmark.json.
#
# Arguments (from RESULTS/guest-args): REPO BIN_DIR
set -euo pipefail
results=$1
mapfile -d '' args <"$results/guest-args"
REPO=${args[0]}
BIN_DIR=${args[1]}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
source "$REPO/tests/guest/common.sh"

HOODY_POOL_SIZE=8G make_pool
start_bus
write_config
start_daemon "$results/daemon.log"

{
    echo "guest kernel: $(uname -r)"
    echo "zfs: $(zfs version | tr '\n' ' ')"
    echo "hoody-snapd: $("$BIN_DIR/hoody-snapd" --version)"
    echo "guest cpus: $(nproc), memory: $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB"
} >"$results/machine"

export HOODY_TEST_VM=1
export HOODY_CONTAINER_ROOT=$CONTAINER_ROOT
export HOODY_INTERNAL_ROOT=$INTERNAL_ROOT
export HOODY_SNAP_BIN=$BIN_DIR/hoody-snap
export HOODY_DAEMON_LOG=$results/daemon.log
export HOODY_PID_FILE=$PID_FILE
status=0
"$BIN_DIR/bench" "$results" || status=$?
echo "$status" >"$results/status"
zpool export "$POOL" || true
