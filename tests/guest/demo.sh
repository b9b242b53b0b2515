#!/usr/bin/env bash
# Runs inside the test VM: starts the daemon on a file-backed pool and walks through what a
# user does with the client, printing each command and what it prints.
set -uo pipefail
results=$1
mapfile -d '' args <"$results/guest-args"
REPO=${args[0]}
BIN_DIR=${args[1]}
export PATH=$BIN_DIR:/usr/sbin:/usr/bin:/sbin:/bin
source "$REPO/tests/guest/common.sh"

set -e
HOODY_POOL_SIZE=1G make_pool
prepare_polkit
start_bus
start_polkit
write_config
start_daemon "$results/daemon.log"
set +e

# Prints a command, then runs it; a failing command is shown with its exit code.
show() {
    printf '\n$ %s\n' "$*"
    "$@"
    local status=$?
    [ "$status" -eq 0 ] || printf '(exit code %d)\n' "$status"
}

# Prints a shell command line, then runs it.
show_shell() {
    printf '\n$ %s\n' "$1"
    sh -c "$1"
}

show hoody-snap containers create --container web-1 --project shop
files=$(zfs get -H -o value mountpoint tank/hoody/containers/web-1)
show_shell "echo 'version 1' > $files/app.conf"
show hoody-snap snapshots create --container web-1 --alias before-ai-changes --expiry 7
show_shell "echo 'version 2, edited by an agent' > $files/app.conf"
show hoody-snap snapshots create --container web-1 --alias with-ai-changes
show hoody-snap snapshots list --container web-1
show_shell "echo 'version 3, broken' > $files/app.conf"
show hoody-snap snapshots restore --container web-1 --name with-ai-changes
show cat "$files/app.conf"
show hoody-snap snapshots restore --container web-1 --name before-ai-changes
show cat "$files/app.conf"
show hoody-snap snapshots list --container web-1
show hoody-snap snapshots restore --container web-1 --name with-ai-changes
show cat "$files/app.conf"
show hoody-snap containers copy --from web-1 --snapshot before-ai-changes --container web-2
show hoody-snap snapshots alias --container web-1 --name with-ai-changes --alias agent-result
show hoody-snap --json snapshots show --container web-1 --name agent-result
show hoody-snap snapshots delete --container web-1 --name agent-result
show hoody-snap snapshots restore --container web-1 --name before-ai-changes
show cat "$files/app.conf"
show hoody-snap snapshots preview --container web-1
show hoody-snap containers list
show hoody-snap containers delete --container web-2
show hoody-snap containers create --container 'bad/id'
# alice owns web-1, bob is any other user, and a polkit rule makes carol's group admins.
client=$BIN_DIR/hoody-snap
show hoody-snap containers set-owner --container web-1 --owner alice
show runuser -u alice -- "$client" snapshots create --container web-1 --alias alice-was-here
show runuser -u alice -- "$client" snapshots delete --container web-1 --name alice-was-here
show runuser -u bob -- "$client" snapshots list --container web-1
show runuser -u carol -- "$client" snapshots delete --container web-1 --name alice-was-here
show zfs list -t all -o name,used,refer,icu.hoody:role,icu.hoody:alias -r tank/hoody
echo
echo "demo finished; the daemon log is in $results/daemon.log"
