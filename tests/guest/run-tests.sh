#!/usr/bin/env bash
# Runs inside the test VM: makes the pool, starts the bus and the daemon, then runs each
# integration test binary and writes the totals to RESULTS/summary.
#
# Arguments (from RESULTS/guest-args): REPO BIN_DIR TEST_BINARY...
set -uo pipefail
results=$1
mapfile -d '' args <"$results/guest-args"
REPO=${args[0]}
BIN_DIR=${args[1]}
tests=("${args[@]:2}")
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
source "$REPO/tests/guest/common.sh"

set -e
make_pool
start_bus
write_config
start_daemon "$results/daemon.log"
set +e

export HOODY_TEST_VM=1
export HOODY_POOL=$POOL
export HOODY_CONTAINER_ROOT=$CONTAINER_ROOT
export HOODY_INTERNAL_ROOT=$INTERNAL_ROOT
export HOODY_HOOK_DIR=$HOOK_DIR
export HOODY_SNAP_BIN=$BIN_DIR/hoody-snap
export HOODY_SNAPD_BIN=$BIN_DIR/hoody-snapd
export HOODY_CONFIG=$CONFIG
export HOODY_DAEMON_LOG=$results/daemon.log
export HOODY_REPO=$REPO

passed=0
failed=0
binaries_failed=0
for binary in "${tests[@]}"; do
    name=$(basename "$binary")
    guest_log "running $name"
    threads=2
    # Tests that restart the shared daemon run one at a time.
    case "$name" in lifecycle-* | crash_recovery-* | expiry-* | full_pool-*) threads=1 ;; esac
    "$binary" --test-threads="$threads" 2>&1 | tee "$results/$name.log"
    status=${PIPESTATUS[0]}
    line=$(grep -E '^test result:' "$results/$name.log" | tail -n 1)
    p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$line")
    f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$line")
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$status" -ne 0 ] || [ -z "$line" ]; then
        binaries_failed=$((binaries_failed + 1))
    fi
done

if ! kill -0 "$(cat /tmp/hoody-snapd.pid)" 2>/dev/null; then
    guest_log "hoody-snapd is no longer running at the end of the tests"
    binaries_failed=$((binaries_failed + 1))
fi
echo "$passed $failed $binaries_failed" >"$results/summary"
zpool export "$POOL" || true
