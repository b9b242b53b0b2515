#!/usr/bin/env bash
# Runs inside the test VM: boots systemd as PID 1 in a systemd-nspawn container, installs
# hoody-snapd there and drives it as an operator does, with systemctl, busctl, hoody-snap,
# journalctl and the Ansible role. The container's root is an overlay. Its lower layer is the
# guest's root filesystem, which is the host's root with systemd, dbus and ZFS installed, and its
# upper layer is a tmpfs, so the package installs into a throw-away copy of the host. The pool
# lives in the guest, and /dev/zfs is bound into the container.
#
# Each check prints "PASS NAME" or "FAIL NAME" and writes its commands and output to
# RESULTS/systemd/NN-NAME.log. RESULTS/systemd-summary gets the counts (see write_summary), and
# RESULTS/systemd-timings the seconds that each phase took.
#
# Arguments (from RESULTS/guest-args): REPO PACKAGE [ANSIBLE_DIR]. PACKAGE is a .deb file, or a
# folder with built hoody-snapd and hoody-snap binaries. ANSIBLE_DIR is a Python environment
# with ansible-playbook in bin/; without it the Ansible checks fail.
set -uo pipefail
results=$1
mapfile -d '' args <"$results/guest-args"
REPO=${args[0]}
PACKAGE=${args[1]}
ANSIBLE_DIR=${args[2]:-}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
source "$REPO/tests/guest/common.sh"

MACHINE=hoody-systemd
CT_BASE=/tmp/hoody-ct
CT_ROOT=$CT_BASE/root
# The container's copy of the package and of the repository's files (see copy_inputs).
CT_INPUTS=/var/lib/hoody-test
CT_PACKAGE=""
CT_REPO=""
# Containers mount below this folder of the container's root. The pool's root filesystem is not
# mounted, so nothing is mounted in the guest's own namespace.
POOL_MOUNTPOINT=/srv
CONTAINERS_DIR=$POOL_MOUNTPOINT/hoody/containers
CONFIG_PATH=/etc/hoody-snapd/config.toml
LOGS=$results/systemd
TIMINGS=$results/systemd-timings
SUMMARY=$results/systemd-summary
passed=0
failed=0
check_number=0

mkdir -p "$LOGS"
: >"$TIMINGS"

# Appends a phase's name and its duration in seconds to RESULTS/systemd-timings.
record_time() {
    echo "$1 $2" >>"$TIMINGS"
}

# Runs the function $2 as the check named $1, in a subshell with errexit, so that the first
# failing command fails the check. Prints PASS or FAIL and, on failure, the end of its log.
run_check() {
    local name=$1 function=$2 log status started=$SECONDS
    check_number=$((check_number + 1))
    log=$(printf '%s/%02d-%s.log' "$LOGS" "$check_number" "$name")
    (
        set -eE
        trap 'echo "check failed at line $LINENO: $BASH_COMMAND" >&2' ERR
        "$function"
    ) >"$log" 2>&1
    status=$?
    record_time "$name" $((SECONDS - started))
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $name ($((SECONDS - started)) s)"
    else
        failed=$((failed + 1))
        echo "FAIL $name ($((SECONDS - started)) s), log $log:"
        tail -n 25 "$log" | sed 's/^/    /'
    fi
    # Written after each check, so that a run cut short by the VM's timeout still counts them.
    write_summary
    return "$status"
}

# Writes "passed failed finished" to RESULTS/systemd-summary, where finished is 1 at the end of
# the run and 0 before.
write_summary() {
    echo "$passed $failed ${1:-0}" >"$SUMMARY"
}

# Prints a command, then runs it inside the container with a clean environment.
in_ct() {
    echo "+ $*" >&2
    nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM=dumb "$@"
}

# Calls a method of the manager interface with busctl inside the container and prints the
# reply as JSON.
bus_call() {
    in_ct busctl --json=short call icu.hoody.Snapd1 /icu/hoody/Snapd1 \
        icu.hoody.Snapd1.Manager "$@"
}

# Fails with a message unless $1 equals $2. $3 names what was compared.
expect_eq() {
    if [ "$1" != "$2" ]; then
        echo "expected $3 to be \"$2\", got \"$1\"" >&2
        return 1
    fi
    echo "ok: $3 is \"$2\"" >&2
}

# Writes the daemon's configuration inside the container, with the given
# snapshots.max_expiry_days. The roots are the daemon's defaults, in the guest's pool.
write_daemon_config() {
    in_ct mkdir -p "$(dirname "$CONFIG_PATH")"
    cat >"$CT_ROOT$CONFIG_PATH.new" <<CONF
[zfs]
root = "$CONTAINER_ROOT"
internal_root = "$INTERNAL_ROOT"

[snapshots]
max_expiry_days = $1

[log]
level = "info"
CONF
    mv "$CT_ROOT$CONFIG_PATH.new" "$CT_ROOT$CONFIG_PATH"
}

# Counts the journal records of hoody-snapd.service whose message contains $1.
count_messages() {
    in_ct journalctl -q -u hoody-snapd -o cat 2>/dev/null | grep -cF -- "$1" || true
}

# Waits up to 60 s until more than $2 journal records of the daemon contain $1.
wait_for_message() {
    local tries=0
    until [ "$(count_messages "$1")" -gt "$2" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 120 ]; then
            echo "no journal record \"$1\" within 60 s" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "journal has \"$1\"" >&2
}

# Creates a snapshot of web-1 with the given expiry and prints the D-Bus error name, or "ok".
# dbus-send, unlike busctl, prints the error name of a failed call.
create_with_expiry() {
    local output
    if output=$(in_ct dbus-send --system --print-reply --dest=icu.hoody.Snapd1 \
        /icu/hoody/Snapd1 icu.hoody.Snapd1.Manager.CreateSnapshot string:web-1 string: \
        "uint32:$1" 2>&1); then
        echo ok
    else
        echo "$output" >&2
        sed -nE 's/^Error (icu\.hoody\.Snapd1\.Error\.[A-Za-z]+):.*/\1/p' <<<"$output" |
            grep . || echo unknown
    fi
}

# zfs runs inside the container for every check, because the mounted property depends on the
# mount namespace of the caller, and the containers are mounted only in the container's.

# Lists the datasets that an interrupted operation must not leave behind: a work dataset, a
# partial receive, or an operation journal entry on the internal root.
half_made_datasets() {
    in_ct zfs list -H -r -t all -o name,icu.hoody:role "$POOL/hoody" |
        awk -F '\t' '$2 == "work" || $1 ~ /%/'
    in_ct zfs get -H -o property,source all "$INTERNAL_ROOT" |
        awk -F '\t' '$1 ~ /^icu\.hoody:op:/ && $2 == "local"'
}

# --- the container ---------------------------------------------------------------------------

# Loads zfs and creates the pool on a sparse file in the guest's /tmp. The pool's root is not
# mounted in the guest. The daemon in the container mounts the containers below
# $POOL_MOUNTPOINT, in the container's own mount namespace.
make_guest_pool() {
    modprobe zfs
    truncate -s 2G "$POOL_FILE"
    zpool create -f -o cachefile=none -O canmount=off -O mountpoint="$POOL_MOUNTPOINT" \
        -O atime=off "$POOL" "$POOL_FILE"
    guest_log "pool $POOL on $POOL_FILE, $(zfs version | tr '\n' ' ')"
}

# Makes the container's root: an overlay with the guest's root as its read-only lower layer and
# a tmpfs as its upper layer. The lower layer is the 9p share itself, so it shows the host's
# own /etc and /var/lib, not the guest's overlays on them.
make_container_root() {
    mkdir -p "$CT_BASE"
    mount -t tmpfs -o mode=0755,size=1500M tmpfs "$CT_BASE"
    mkdir -p "$CT_BASE/upper" "$CT_BASE/work" "$CT_ROOT"
    mount -t overlay overlay \
        -o "lowerdir=/,upperdir=$CT_BASE/upper,workdir=$CT_BASE/work" "$CT_ROOT"

    # The container boots into a target with only the base system and the system bus, so that
    # services the host has enabled (a database, timers) do not start in it.
    local units=$CT_ROOT/etc/systemd/system
    mkdir -p "$units"
    cat >"$units/hoody-test.target" <<'TARGET'
[Unit]
Description=hoody-snapd test system
Requires=basic.target dbus.socket
After=basic.target dbus.socket
AllowIsolate=yes
TARGET
    ln -sf /dev/null "$units/timers.target"

    # Three things in the host's image would make the container unlike an installed Debian host,
    # and are removed from the upper layer only. The image's policy-rc.d forbids maintainer
    # scripts to start services. Its apt lists (tens of MB) would be parsed again after each
    # dpkg run, which takes minutes under emulation, and the test installs only local files.
    # man-db's auto-update flag would rebuild the manual page index after each install.
    rm -f "$CT_ROOT/usr/sbin/policy-rc.d" "$CT_ROOT/var/lib/man-db/auto-update"
    find "$CT_ROOT/var/lib/apt/lists" -mindepth 1 -delete

    copy_inputs
}

# Copies the package and the repository's files that the checks use into the container's upper
# layer, below $CT_INPUTS. systemd-nspawn mounts a tmpfs on the container's /tmp, so a package or
# checkout below the host's /tmp, where CI clones the repository, would not be seen there.
copy_inputs() {
    local inputs=$CT_ROOT$CT_INPUTS
    mkdir -p "$inputs/repo/packaging" "$inputs/repo/tests"
    cp -r "$REPO/config" "$REPO/systemd" "$inputs/repo/"
    cp -r "$REPO/packaging/ansible" "$inputs/repo/packaging/"
    cp -r "$REPO/tests/ansible" "$inputs/repo/tests/"
    if [[ "$PACKAGE" == *.deb ]]; then
        cp "$PACKAGE" "$inputs/"
        CT_PACKAGE=$CT_INPUTS/$(basename "$PACKAGE")
    else
        mkdir -p "$inputs/bin"
        cp "$PACKAGE/hoody-snapd" "$PACKAGE/hoody-snap" "$inputs/bin/"
        CT_PACKAGE=$CT_INPUTS/bin
    fi
    CT_REPO=$CT_INPUTS/repo
}

# Boots systemd in the container and waits until it reports "running".
boot_container() {
    systemd-nspawn -q -D "$CT_ROOT" --bind=/dev/zfs --machine="$MACHINE" \
        --boot --register=no --keep-unit -- systemd.unit=hoody-test.target \
        systemd.firstboot=off >"$results/systemd-console.log" 2>&1 &
    NSPAWN_PID=$!
    local tries=0 state=""
    LEADER=""
    while [ "$tries" -lt 300 ]; do
        if ! kill -0 "$NSPAWN_PID" 2>/dev/null; then
            guest_log "systemd-nspawn exited; its output is in $results/systemd-console.log"
            return 1
        fi
        LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd | head -n 1 || true)
        if [ -n "$LEADER" ]; then
            state=$(in_ct systemctl is-system-running 2>/dev/null || true)
            case "$state" in
            running) break ;;
            degraded)
                in_ct systemctl --failed --no-pager >&2
                return 1
                ;;
            esac
        fi
        tries=$((tries + 1))
        sleep 1
    done
    guest_log "systemd in the container is \"$state\" after $tries s, PID $LEADER in the guest"
    [ "$state" = running ]
}

stop_container() {
    [ -n "${LEADER:-}" ] && in_ct systemctl poweroff 2>/dev/null
    local tries=0
    while kill -0 "$NSPAWN_PID" 2>/dev/null && [ "$tries" -lt 60 ]; do
        tries=$((tries + 1))
        sleep 1
    done
    kill -KILL "$NSPAWN_PID" 2>/dev/null
    zpool export "$POOL" 2>/dev/null
}

# --- installing --------------------------------------------------------------------------------

# Installs hoody-snapd in the container from $1: a .deb file with dpkg, or a folder of built
# binaries, copied to the paths that the table in packaging/README.md lists.
install_product() {
    local source=$1
    if [[ "$source" == *.deb ]]; then
        in_ct dpkg -i "$source"
        return
    fi
    in_ct install -m 755 "$source/hoody-snapd" /usr/sbin/hoody-snapd
    in_ct install -m 755 "$source/hoody-snap" /usr/bin/hoody-snap
    in_ct install -D -m 644 "$CT_REPO/config/config.toml" /etc/hoody-snapd/config.toml
    in_ct install -D -m 644 "$CT_REPO/config/dbus/icu.hoody.Snapd1.conf" \
        /usr/share/dbus-1/system.d/icu.hoody.Snapd1.conf
    in_ct install -D -m 644 "$CT_REPO/config/dbus/icu.hoody.Snapd1.Manager.xml" \
        /usr/share/dbus-1/interfaces/icu.hoody.Snapd1.Manager.xml
    in_ct install -D -m 644 "$CT_REPO/config/polkit/icu.hoody.snapd1.policy" \
        /usr/share/polkit-1/actions/icu.hoody.snapd1.policy
    in_ct install -D -m 644 "$CT_REPO/systemd/icu.hoody.Snapd1.service" \
        /usr/share/dbus-1/system-services/icu.hoody.Snapd1.service
    in_ct install -D -m 644 "$CT_REPO/systemd/hoody-snapd.service" \
        /lib/systemd/system/hoody-snapd.service
    in_ct systemctl daemon-reload
    # The bus is socket-activated, so dbus.service may not run yet. A running bus reloads here.
    in_ct systemctl try-reload-or-restart dbus.service
}

check_install() {
    install_product "$CT_PACKAGE"
    if [[ "$CT_PACKAGE" == *.deb ]]; then
        # The package enables and starts the unit itself.
        expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state after dpkg -i"
    fi
    in_ct hoody-snapd --version
    in_ct hoody-snap --version
    expect_eq "$(in_ct systemctl show -p LoadState --value hoody-snapd)" loaded "unit load state"
    in_ct test -f /usr/share/dbus-1/system-services/icu.hoody.Snapd1.service
    in_ct test -f /usr/share/dbus-1/system.d/icu.hoody.Snapd1.conf
}

check_enable_start() {
    write_daemon_config 3650
    in_ct systemctl enable --now hoody-snapd
    expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state of hoody-snapd"
    expect_eq "$(in_ct systemctl is-enabled hoody-snapd)" enabled "enablement of hoody-snapd"
    in_ct busctl status icu.hoody.Snapd1 >/dev/null

    # The daemon must share PID 1's mount namespace, or its mounts are invisible to the host.
    local pid
    pid=$(in_ct systemctl show -p MainPID --value hoody-snapd)
    expect_eq "$(in_ct readlink "/proc/$pid/ns/mnt")" "$(in_ct readlink /proc/1/ns/mnt)" \
        "mount namespace of the daemon"

    # systemd applied the sandbox: the six capabilities of CapabilityBoundingSet= (bits 0-3,
    # 19 and 21 in linux/capability.h), NoNewPrivileges= and a seccomp filter.
    local status
    status=$(in_ct cat "/proc/$pid/status")
    expect_eq "$(awk '$1 == "CapBnd:" {print $2}' <<<"$status")" 000000000028000f \
        "capability bounding set of the daemon"
    expect_eq "$(awk '$1 == "NoNewPrivs:" {print $2}' <<<"$status")" 1 "NoNewPrivs of the daemon"
    expect_eq "$(awk '$1 == "Seccomp:" {print $2}' <<<"$status")" 2 "seccomp mode of the daemon"
}

# --- driving it --------------------------------------------------------------------------------

check_create_container() {
    bus_call CreateContainer ss web-1 shop
    expect_eq "$(in_ct zfs get -H -o value icu.hoody:project-id "$CONTAINER_ROOT/web-1")" shop \
        "project property of web-1"
    expect_eq "$(in_ct zfs get -H -o value mounted "$CONTAINER_ROOT/web-1")" yes "mounted of web-1"
    expect_eq "$(in_ct zfs get -H -o value mountpoint "$CONTAINER_ROOT/web-1")" \
        "$CONTAINERS_DIR/web-1" "mountpoint of web-1"
}

# A mount made by the daemon under systemd must be seen by every process in the container, not
# only by the daemon.
check_container_mounted() {
    local mountpoint=$CONTAINERS_DIR/web-1
    expect_eq "$(in_ct findmnt -n -o SOURCE,FSTYPE "$mountpoint" | tr -s ' ')" \
        "$CONTAINER_ROOT/web-1 zfs" "mount at $mountpoint"
    in_ct sh -c "echo version-1 > $mountpoint/app.conf"
    # The file must be on the container's filesystem, not on the overlay root below it.
    expect_eq "$(in_ct stat -f -c %T "$mountpoint/app.conf")" zfs "file system of app.conf"
}

check_snapshot_create() {
    local mountpoint=$CONTAINERS_DIR/web-1
    in_ct hoody-snap snapshots create --container web-1 --alias v1 --expiry 7
    in_ct sh -c "echo version-2 > $mountpoint/app.conf"
    bus_call CreateSnapshot ssu web-1 v2 0
    # zfs is the oracle: both snapshots carry their alias, and only v1 an expiry.
    local listing
    listing=$(in_ct zfs list -H -t snapshot -o icu.hoody:alias,icu.hoody:expires -s createtxg \
        -r "$CONTAINER_ROOT/web-1")
    echo "$listing" >&2
    expect_eq "$(cut -f 1 <<<"$listing" | tr '\n' ' ')" "v1 v2 " "aliases of web-1's snapshots"
    [ "$(sed -n 1p <<<"$listing" | cut -f 2)" != - ]
    expect_eq "$(sed -n 2p <<<"$listing" | cut -f 2)" - "expiry of v2"
}

check_snapshot_list() {
    local from_client from_bus
    from_client=$(in_ct hoody-snap --json snapshots list --container web-1 |
        python3 -c 'import json, sys; print(" ".join(s["alias"] or "" for s in json.load(sys.stdin)["data"]))')
    expect_eq "$from_client" "v1 v2" "aliases listed by hoody-snap"
    from_bus=$(bus_call ListSnapshots s web-1 |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"][0]))')
    expect_eq "$from_bus" 2 "number of snapshots listed by ListSnapshots"
}

check_snapshot_restore() {
    local mountpoint=$CONTAINERS_DIR/web-1
    in_ct hoody-snap snapshots restore --container web-1 --name v1
    expect_eq "$(in_ct cat "$mountpoint/app.conf")" version-1 "app.conf after restoring v1"
    expect_eq "$(in_ct findmnt -n -o SOURCE "$mountpoint")" "$CONTAINER_ROOT/web-1" \
        "mount at $mountpoint after restore"
    # Both snapshots are kept, on the container and on its superseded timeline.
    expect_eq "$(in_ct zfs list -H -t snapshot -o icu.hoody:alias -r "$POOL/hoody" | grep -cx 'v[12]')" \
        2 "number of snapshots aliased v1 or v2 in the pool"
}

check_dbus_activation() {
    in_ct systemctl stop hoody-snapd
    expect_eq "$(in_ct systemctl is-active hoody-snapd || true)" inactive "state after stop"
    bus_call ListContainers
    expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state after a bus call"
    expect_eq "$(in_ct pgrep -c -x hoody-snapd)" 1 "number of hoody-snapd processes"
}

check_reload_good() {
    local before
    expect_eq "$(create_with_expiry 7)" ok "expiry of 7 days before the reload"
    before=$(count_messages "configuration reloaded")
    write_daemon_config 5
    in_ct systemctl reload hoody-snapd
    wait_for_message "configuration reloaded" "$before"
    expect_eq "$(create_with_expiry 7)" icu.hoody.Snapd1.Error.InvalidArgument \
        "expiry of 7 days with max_expiry_days = 5"
    expect_eq "$(create_with_expiry 5)" ok "expiry of 5 days with max_expiry_days = 5"
    expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state after the reload"
}

# Writes a file that is not valid and reloads it twice: with `systemctl reload`, which must fail
# because ExecReload waits for the daemon's result, and with a SIGHUP to the daemon's PID.
# Both times the daemon keeps running with the settings of the last good file.
check_reload_bad() {
    local before reasons main_pid
    before=$(count_messages "configuration not reloaded")
    reasons=$(count_messages "snapshots.max_expiry_days is 0")
    write_daemon_config 0
    if in_ct systemctl reload hoody-snapd; then
        echo "systemctl reload succeeded with a file that is not valid" >&2
        return 1
    fi
    wait_for_message "configuration not reloaded" "$before"
    # The client that ExecReload runs logs the daemon's reason in the unit's journal.
    wait_for_message "snapshots.max_expiry_days is 0" "$reasons"
    expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state after a rejected reload"
    # The settings in force are still those of the last good file.
    expect_eq "$(create_with_expiry 7)" icu.hoody.Snapd1.Error.InvalidArgument \
        "expiry of 7 days after a rejected reload"
    expect_eq "$(create_with_expiry 5)" ok "expiry of 5 days after a rejected reload"

    before=$(count_messages "configuration not reloaded")
    main_pid=$(in_ct systemctl show -p MainPID --value hoody-snapd)
    in_ct kill -HUP "$main_pid"
    wait_for_message "configuration not reloaded" "$before"
    expect_eq "$(in_ct systemctl show -p MainPID --value hoody-snapd)" "$main_pid" \
        "main PID after a rejected SIGHUP"
    expect_eq "$(create_with_expiry 7)" icu.hoody.Snapd1.Error.InvalidArgument \
        "expiry of 7 days after a rejected SIGHUP"

    before=$(count_messages "configuration reloaded")
    write_daemon_config 3650
    in_ct systemctl reload hoody-snapd
    wait_for_message "configuration reloaded" "$before"
}

# Stops the daemon while a full copy runs. The daemon finishes running operations before it
# exits, so the copy must be complete after the stop, and nothing half-made may be left.
check_stop_during_copy() {
    local mountpoint=$CONTAINERS_DIR/big job state stopped_in
    bus_call CreateContainer ss big default
    # 192 MiB of random data, so that the copy runs for a while under emulation.
    in_ct sh -c "head -c 32M /dev/urandom > $mountpoint/data-1 &&
        for part in 2 3 4 5 6; do cp $mountpoint/data-1 $mountpoint/data-\$part; done && sync"
    bus_call CreateSnapshot ssu big before-copy 0
    job=$(bus_call CopyContainer 'ssssa{sv}' big before-copy big-copy default 0 |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0])')
    state=$(bus_call GetJob u "$job" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["state"]["data"])')
    echo "copy job $job is $state when the stop starts" >&2
    expect_eq "$state" running "state of the copy job at the stop"

    local started=$SECONDS
    in_ct systemctl stop hoody-snapd
    stopped_in=$((SECONDS - started))
    echo "systemctl stop took $stopped_in s" >&2
    expect_eq "$(in_ct systemctl show -p Result --value hoody-snapd)" success "result of the stop"
    expect_eq "$(half_made_datasets)" "" "half-made datasets after the stop"

    in_ct systemctl start hoody-snapd
    expect_eq "$(half_made_datasets)" "" "half-made datasets after the restart"
    expect_eq "$(in_ct zfs get -H -o value icu.hoody:role "$CONTAINER_ROOT/big-copy")" live \
        "role of the copy"
    expect_eq "$(in_ct sh -c "cd $CONTAINERS_DIR/big-copy && cat data-* | md5sum")" \
        "$(in_ct sh -c "cd $mountpoint && cat data-* | md5sum")" "checksum of the copied files"
    in_ct journalctl -q -u hoody-snapd -o cat | grep -F "stopped; all operations finished"
}

check_journal_fields() {
    in_ct journalctl -q -u hoody-snapd -o json MESSAGE="snapshot created" >"$LOGS/created.json"
    in_ct journalctl -q -u hoody-snapd -o json MESSAGE="operation rejected" >"$LOGS/rejected.json"
    python3 - "$LOGS/created.json" "$LOGS/rejected.json" <<'PY'
import json
import sys


def records(path):
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.strip()]


created = [r for r in records(sys.argv[1]) if r.get("CONTAINER") == "web-1"]
assert created, "no 'snapshot created' record with CONTAINER=web-1"
record = created[0]
print("snapshot created:", {k: v for k, v in record.items() if not k.startswith("_")})
assert record["SNAPSHOT"].startswith("snap-"), f"SNAPSHOT is {record.get('SNAPSHOT')!r}"
assert record.get("ALIAS") == "v1", f"ALIAS is {record.get('ALIAS')!r}"
assert record["SYSLOG_IDENTIFIER"] == "hoody-snapd", record["SYSLOG_IDENTIFIER"]

rejected = records(sys.argv[2])
assert rejected, "no 'operation rejected' record"
record = rejected[-1]
print("operation rejected:", {k: v for k, v in record.items() if not k.startswith("_")})
for field in ("OPERATION", "CONTAINER", "DURATION_MS", "ERROR", "REASON"):
    assert field in record, f"field {field} is missing"
assert record["OPERATION"] == "CreateSnapshot", record["OPERATION"]
assert record["ERROR"] == "InvalidArgument", record["ERROR"]
# A field named like a standard journal field would add a second value to it.
assert record["MESSAGE"] == "operation rejected", f"MESSAGE is {record['MESSAGE']!r}"
PY
}

check_config_command() {
    printf '[snapshots]\nmax_expiry_days = 0\n' >"$CT_ROOT/root/bad.toml"
    local output status=0
    output=$(in_ct hoody-snapd check-config /root/bad.toml 2>&1) || status=$?
    echo "$output" >&2
    expect_eq "$status" 1 "exit status of check-config on a bad file"
    grep -F "invalid config file /root/bad.toml: snapshots.max_expiry_days is 0" <<<"$output"
    in_ct hoody-snapd check-config "$CONFIG_PATH"
}

check_restart_bad_config() {
    cp "$CT_ROOT/root/bad.toml" "$CT_ROOT$CONFIG_PATH"
    if in_ct systemctl restart hoody-snapd; then
        echo "systemctl restart succeeded with a bad configuration" >&2
        return 1
    fi
    in_ct systemctl status --no-pager hoody-snapd || true
    in_ct systemctl show -p ExecStartPre --value hoody-snapd | grep -F 'status=1'
    in_ct journalctl -q -u hoody-snapd -o cat | grep -F "snapshots.max_expiry_days is 0"

    write_daemon_config 3650
    in_ct systemctl reset-failed hoody-snapd
    in_ct systemctl restart hoody-snapd
    expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state with a good configuration"
}

# --- the Ansible role ---------------------------------------------------------------------------

# Runs the test playbook in the container and prints the "changed" count of its recap. $2 is
# the state of the test's snapshot schedule, and $3 the value of zfs.create_root (true when
# not given).
run_playbook() {
    local log=$1 schedule_state=$2 create_root=${3:-true} deb=""
    [[ "$CT_PACKAGE" == *.deb ]] && deb=$CT_PACKAGE
    in_ct ANSIBLE_ROLES_PATH="$CT_REPO/packaging/ansible/roles" ANSIBLE_NOCOLOR=1 \
        ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_PIPELINING=1 \
        "$ANSIBLE_DIR/bin/ansible-playbook" -i localhost, \
        -e ansible_python_interpreter=/usr/bin/python3 -e "hoody_test_deb=$deb" \
        -e "hoody_test_schedule_state=$schedule_state" -e "hoody_test_create_root=$create_root" \
        "$CT_REPO/tests/ansible/converge.yml" >"$log" 2>&1
    local status=$?
    cat "$log" >&2
    [ "$status" -eq 0 ] || return 1
    sed -nE 's/^localhost +:.* changed=([0-9]+).*/\1/p' "$log"
}

check_ansible_converge() {
    local changed
    changed=$(run_playbook "$LOGS/ansible-first.log" present)
    echo "first run: changed=$changed" >&2
    [ "$changed" -gt 0 ]
}

check_ansible_idempotent() {
    local changed
    changed=$(run_playbook "$LOGS/ansible-second.log" present)
    expect_eq "$changed" 0 "changed count of the second run"
}

check_ansible_effects() {
    grep -Fx "max_expiry_days = 30" "$CT_ROOT$CONFIG_PATH"
    expect_eq "$(create_with_expiry 31)" icu.hoody.Snapd1.Error.InvalidArgument \
        "expiry of 31 days after the role set max_expiry_days = 30"
    expect_eq "$(in_ct zfs get -H -o value icu.hoody:project-id "$CONTAINER_ROOT/db-1")" shop \
        "project of db-1"
    expect_eq "$(in_ct systemctl is-active hoody-snapshot-db-1-hourly.timer)" active \
        "state of the schedule's timer"
    in_ct systemctl start hoody-snapshot-db-1-hourly.service
    local listing
    listing=$(in_ct zfs list -H -t snapshot -o icu.hoody:alias,icu.hoody:expires -r "$CONTAINER_ROOT/db-1")
    echo "$listing" >&2
    grep -qE '^hourly-[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z	[0-9]' <<<"$listing"
}

# Removes the schedule and changes zfs.create_root in the same run. A reload rejects a change of
# the [zfs] table, so the role's handler must restart the daemon.
check_ansible_remove_schedule() {
    local changed main_pid new_pid
    main_pid=$(in_ct systemctl show -p MainPID --value hoody-snapd)
    changed=$(run_playbook "$LOGS/ansible-remove.log" absent false)
    echo "removing run: changed=$changed" >&2
    [ "$changed" -gt 0 ]
    grep -Fx "create_root = false" "$CT_ROOT$CONFIG_PATH"
    grep -F "RUNNING HANDLER [hoody_snapd : Restart hoody-snapd for a changed [zfs] table]" \
        "$LOGS/ansible-remove.log"
    expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state after the restart"
    new_pid=$(in_ct systemctl show -p MainPID --value hoody-snapd)
    echo "main PID $main_pid before the run, $new_pid after" >&2
    [ "$new_pid" != "$main_pid" ]
    expect_eq "$(in_ct systemctl is-active hoody-snapshot-db-1-hourly.timer || true)" inactive \
        "state of the removed schedule's timer"
    in_ct test ! -e /etc/systemd/system/hoody-snapshot-db-1-hourly.timer
    in_ct test ! -e /etc/systemd/system/hoody-snapshot-db-1-hourly.service
    # Removing a schedule keeps the snapshots it took.
    in_ct zfs list -H -t snapshot -o icu.hoody:alias -r "$CONTAINER_ROOT/db-1" | grep -q '^hourly-'
}

# --- upgrading ----------------------------------------------------------------------------------

# Installs the package again with a higher version over the running daemon, as an upgrade does.
# The copy differs from the installed package only in its version, so the check covers the
# maintainer scripts and dpkg. The daemon must restart on the new files, the changed
# configuration must stay without a prompt, and every snapshot must keep its alias.
check_upgrade() {
    if [[ "$CT_PACKAGE" != *.deb ]]; then
        echo "the upgrade check needs a .deb, got $PACKAGE; pass one to tests/systemd-test.sh" >&2
        return 1
    fi
    local unpacked=$CT_BASE/upgrade old_version new_version new_package main_pid new_pid
    old_version=$(in_ct dpkg-query -W -f='${Version}' hoody-snapd)
    new_version=$old_version+upgrade1
    rm -rf "$unpacked"
    dpkg-deb -R "$CT_ROOT$CT_PACKAGE" "$unpacked"
    sed -i "s/^Version: .*/Version: $new_version/" "$unpacked/DEBIAN/control"
    new_package=$CT_INPUTS/hoody-snapd_${new_version}_amd64.deb
    # Uncompressed, because dpkg-deb compresses with xz by default, which is slow under emulation.
    dpkg-deb -Znone -b "$unpacked" "$CT_ROOT$new_package" >&2

    cp "$CT_ROOT$CONFIG_PATH" "$CT_BASE/config-before-upgrade"
    in_ct zfs list -H -t snapshot -o name,icu.hoody:alias -r "$CONTAINER_ROOT" | sort \
        >"$LOGS/snapshots-before-upgrade"
    main_pid=$(in_ct systemctl show -p MainPID --value hoody-snapd)

    in_ct dpkg -i "$new_package"
    expect_eq "$(in_ct dpkg-query -W -f='${Version}' hoody-snapd)" "$new_version" \
        "installed version"
    expect_eq "$(in_ct systemctl is-active hoody-snapd)" active "state after the upgrade"
    new_pid=$(in_ct systemctl show -p MainPID --value hoody-snapd)
    echo "main PID $main_pid before the upgrade, $new_pid after" >&2
    if [ "$new_pid" = "$main_pid" ]; then
        echo "the daemon was not restarted by the upgrade" >&2
        return 1
    fi
    cmp "$CT_BASE/config-before-upgrade" "$CT_ROOT$CONFIG_PATH"
    in_ct test ! -e "$CONFIG_PATH.dpkg-dist"
    in_ct test ! -e "$CONFIG_PATH.dpkg-old"
    in_ct zfs list -H -t snapshot -o name,icu.hoody:alias -r "$CONTAINER_ROOT" | sort \
        >"$LOGS/snapshots-after-upgrade"
    diff "$LOGS/snapshots-before-upgrade" "$LOGS/snapshots-after-upgrade"
    in_ct hoody-snap status
}

# --- the run -------------------------------------------------------------------------------------

phase_started=$SECONDS
if ! make_guest_pool; then
    echo "FAIL pool"
    failed=1
    write_summary 1
    exit 1
fi
record_time pool $((SECONDS - phase_started))

phase_started=$SECONDS
if make_container_root && boot_container; then
    passed=$((passed + 1))
    echo "PASS boot ($((SECONDS - phase_started)) s)"
else
    failed=$((failed + 1))
    echo "FAIL boot ($((SECONDS - phase_started)) s); console output:"
    tail -n 40 "$results/systemd-console.log" | sed 's/^/    /'
    record_time boot $((SECONDS - phase_started))
    write_summary 1
    stop_container
    exit 1
fi
record_time boot $((SECONDS - phase_started))

run_check install check_install
run_check enable-start check_enable_start
run_check create-container check_create_container
run_check container-mounted check_container_mounted
run_check snapshot-create check_snapshot_create
run_check snapshot-list check_snapshot_list
run_check snapshot-restore check_snapshot_restore
run_check dbus-activation check_dbus_activation
run_check reload-good-config check_reload_good
run_check reload-bad-config check_reload_bad
run_check stop-during-copy check_stop_during_copy
run_check journal-fields check_journal_fields
run_check check-config check_config_command
run_check restart-bad-config check_restart_bad_config
run_check ansible-converge check_ansible_converge
run_check ansible-idempotent check_ansible_idempotent
run_check ansible-effects check_ansible_effects
run_check ansible-remove-schedule check_ansible_remove_schedule
run_check upgrade check_upgrade

in_ct journalctl -q -u hoody-snapd -o short-precise >"$results/systemd-daemon.log" 2>&1
in_ct journalctl -q -b -o short-precise >"$results/systemd-journal.log" 2>&1
phase_started=$SECONDS
stop_container
record_time shutdown $((SECONDS - phase_started))
record_time guest-total "$SECONDS"
write_summary 1
[ "$failed" -eq 0 ]
