# Sourced by the guest scripts: prepares a pool, a system bus and the daemon inside the VM.
# Expects REPO (the repository) and BIN_DIR (the built binaries) to be set.

POOL=tank
POOL_FILE=/tmp/hoody-pool.img
MOUNT_ROOT=/tmp/hoody-mnt
CONTAINER_ROOT=$POOL/hoody/containers
INTERNAL_ROOT=$POOL/hoody/internal
HOOK_DIR=/tmp/hoody-hooks
CONFIG=/tmp/hoody-snapd/config.toml

guest_log() { printf 'guest: %s\n' "$*" >&2; }

# Loads zfs and creates a pool on a sparse file in the guest's /tmp. The default mountpoint
# /tank would be on the read-only root, so the pool mounts under /tmp.
make_pool() {
    modprobe zfs
    truncate -s "${HOODY_POOL_SIZE:-4G}" "$POOL_FILE"
    zpool create -f -o cachefile=none -O mountpoint="$MOUNT_ROOT" -O atime=off \
        "$POOL" "$POOL_FILE"
    guest_log "pool $POOL on $POOL_FILE, $(zfs version | tr '\n' ' ')"
}

# Installs the D-Bus policy and starts the system bus.
start_bus() {
    mkdir -p /etc/dbus-1/system.d /run/dbus
    cp "$REPO/config/dbus/icu.hoody.Snapd1.conf" /etc/dbus-1/system.d/
    dbus-daemon --system --fork
    guest_log "system bus started"
}

write_config() {
    mkdir -p "$(dirname "$CONFIG")" "$HOOK_DIR"
    cat >"$CONFIG" <<CONF
[zfs]
root = "$CONTAINER_ROOT"
internal_root = "$INTERNAL_ROOT"

[restore]
pre_hook = ["/usr/bin/touch", "$HOOK_DIR/pre-{container}"]
post_hook = ["/usr/bin/touch", "$HOOK_DIR/post-{container}"]

[log]
level = "info"
target = "stderr"
CONF
}

# Starts the daemon in the background and waits until it owns its bus name.
start_daemon() {
    local log=$1
    "$BIN_DIR/hoody-snapd" --config "$CONFIG" >>"$log" 2>&1 &
    DAEMON_PID=$!
    echo "$DAEMON_PID" >/tmp/hoody-snapd.pid
    local tries=0
    until busctl --system status icu.hoody.Snapd1 >/dev/null 2>&1; do
        tries=$((tries + 1))
        if ! kill -0 "$DAEMON_PID" 2>/dev/null || [ "$tries" -gt 300 ]; then
            guest_log "hoody-snapd did not start; its log:"
            cat "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    guest_log "hoody-snapd running as pid $DAEMON_PID"
}
