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
export HOODY_PID_FILE=$PID_FILE

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

# The timing test runs first and alone. The tests that restart their daemon run one test at a
# time: crash recovery and expiry against a second daemon on a private bus with roots of its
# own, lifecycle and the full pool against the shared one before the others use it. The other
# binaries check only their own datasets, so they run in two lanes at once, the long field cases
# in one and everything else in the other.
alone=()
second=()
restarting=()
field=()
others=()
for binary in "${tests[@]}"; do
    case "$(basename "$binary")" in
    busy_daemon-*) alone+=("$binary") ;;
    crash_recovery-* | expiry-*) second+=("$binary") ;;
    lifecycle-* | full_pool-*) restarting+=("$binary") ;;
    field_cases-*) field+=("$binary") ;;
    *) others+=("$binary") ;;
    esac
done
: >"$results/counts"
for binary in "${alone[@]}"; do
    run_binary "$binary" 1
done

SECOND_BUS=/tmp/hoody-bus2/socket
start_private_bus "$SECOND_BUS"
(
    export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$SECOND_BUS"
    CONTAINER_ROOT=$POOL/hoody2/containers
    INTERNAL_ROOT=$POOL/hoody2/internal
    CONFIG=/tmp/hoody-snapd2/config.toml
    PID_FILE=/tmp/hoody-snapd2.pid
    export HOODY_CONTAINER_ROOT=$CONTAINER_ROOT HOODY_INTERNAL_ROOT=$INTERNAL_ROOT
    export HOODY_CONFIG=$CONFIG HOODY_PID_FILE=$PID_FILE HOODY_DAEMON_LOG=$results/daemon2.log
    write_config
    start_daemon "$HOODY_DAEMON_LOG"
    for binary in "${second[@]}"; do
        run_binary "$binary" 1
    done
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        guest_log "the second hoody-snapd is no longer running at the end of its tests"
        echo "0 0 1" >>"$results/counts"
    fi
) &
second_lane=$!

for binary in "${restarting[@]}"; do
    run_binary "$binary" 1
done
(for binary in "${field[@]}"; do run_binary "$binary" 2; done) &
field_lane=$!
for binary in "${others[@]}"; do
    run_binary "$binary" 2
done
wait "$field_lane" "$second_lane"

read -r passed failed binaries_failed < <(awk '{p += $1; f += $2; b += $3} END {print p + 0, f + 0, b + 0}' "$results/counts")

if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    guest_log "hoody-snapd is no longer running at the end of the tests"
    binaries_failed=$((binaries_failed + 1))
fi
echo "$passed $failed $binaries_failed" >"$results/summary"
zpool export "$POOL" || true
