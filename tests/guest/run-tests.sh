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
prepare_polkit
start_bus
start_polkit
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
export HOODY_ADMIN_GROUP=$ADMIN_GROUP
export HOODY_POLKIT_LOG=$POLKIT_LOG

# Runs one test binary with THREADS test threads, writes its output to RESULTS/NAME.log and
# prints it, and appends "passed failed broken" to RESULTS/counts.
run_binary() {
    local binary=$1 threads=$2 name log status line p f broken=0
    name=$(basename "$binary")
    log="$results/$name.log"
    guest_log "running $name"
    "$binary" --test-threads="$threads" >"$log" 2>&1
    status=$?
    cat "$log"
    line=$(grep -E '^test result:' "$log" | tail -n 1)
    p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$line")
    f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$line")
    if [ "$status" -ne 0 ] || [ -z "$line" ]; then
        broken=1
    fi
    echo "${p:-0} ${f:-0} $broken" >>"$results/counts"
}

# Tests that restart the shared daemon, or measure how fast it answers, run alone, one test at
# a time, and first, while the pool is still small: each start of the daemon scans every
# container. The other binaries check only their own datasets, so they run in two lanes at
# once: the long field cases in one, everything else in the other.
alone=()
field=()
others=()
for binary in "${tests[@]}"; do
    case "$(basename "$binary")" in
    lifecycle-* | crash_recovery-* | expiry-* | full_pool-* | busy_daemon-*) alone+=("$binary") ;;
    field_cases-*) field+=("$binary") ;;
    *) others+=("$binary") ;;
    esac
done
: >"$results/counts"
for binary in "${alone[@]}"; do
    run_binary "$binary" 1
done
(for binary in "${field[@]}"; do run_binary "$binary" 2; done) &
lane=$!
for binary in "${others[@]}"; do
    run_binary "$binary" 2
done
wait "$lane"

read -r passed failed binaries_failed < <(awk '{p += $1; f += $2; b += $3} END {print p + 0, f + 0, b + 0}' "$results/counts")

if ! kill -0 "$(cat /tmp/hoody-snapd.pid)" 2>/dev/null; then
    guest_log "hoody-snapd is no longer running at the end of the tests"
    binaries_failed=$((binaries_failed + 1))
fi
echo "$passed $failed $binaries_failed" >"$results/summary"
zpool export "$POOL" || true
