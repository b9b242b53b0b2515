# Sourced by the guest scripts: prepares a pool, a system bus and the daemon inside the VM.
# Expects REPO (the repository) and BIN_DIR (the built binaries) to be set.

POOL=tank
POOL_FILE=/tmp/hoody-pool.img
MOUNT_ROOT=/tmp/hoody-mnt
CONTAINER_ROOT=$POOL/hoody/containers
INTERNAL_ROOT=$POOL/hoody/internal
HOOK_DIR=/tmp/hoody-hooks
CONFIG=/tmp/hoody-snapd/config.toml
PID_FILE=/tmp/hoody-snapd.pid

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

# Test users of the access tests: alice owns containers, bob owns none, carol is in the group
# that the test polkit rule makes administrators.
ADMIN_GROUP=hoody-admins
POLKIT_LOG=/tmp/polkitd.log

# Prepares polkit before the bus starts: our actions, a rule for the admin group, the test
# users, and no bus activation, so that a stopped polkitd stays stopped.
prepare_polkit() {
    # /usr is the host's and read-only, so a tmpfs with a copy of the installed actions and
    # ours takes the place of the actions folder.
    local actions=/usr/share/polkit-1/actions copy=/tmp/polkit-actions
    mkdir -p "$copy"
    cp -a "$actions/." "$copy/"
    mount -t tmpfs -o mode=0755 tmpfs "$actions"
    cp -a "$copy/." "$actions/"
    cp "$REPO/config/polkit/icu.hoody.snapd1.policy" "$actions/"
    mount -t tmpfs -o mode=0755 tmpfs /usr/share/dbus-1/system-services

    # Written directly: useradd fails to rewrite /etc/shadow on the guest's overlay.
    cat >>/etc/group <<GROUPS
alice:x:2001:
bob:x:2002:
carol:x:2003:
$ADMIN_GROUP:x:2100:carol
GROUPS
    cat >>/etc/passwd <<USERS
alice:x:2001:2001:test owner:/nonexistent:/usr/sbin/nologin
bob:x:2002:2002:test stranger:/nonexistent:/usr/sbin/nologin
carol:x:2003:2003:test administrator:/nonexistent:/usr/sbin/nologin
USERS
    mkdir -p /etc/polkit-1/rules.d
    cat >/etc/polkit-1/rules.d/60-hoody-test.rules <<RULES
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("icu.hoody.snapd1.") == 0 && subject.isInGroup("$ADMIN_GROUP")) {
        return polkit.Result.YES;
    }
});
RULES
}

# Starts polkitd and waits until it owns its bus name.
start_polkit() {
    /usr/lib/polkit-1/polkitd --no-debug >>"$POLKIT_LOG" 2>&1 &
    local tries=0
    until busctl --system status org.freedesktop.PolicyKit1 >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 300 ]; then
            guest_log "polkitd did not start; its log:"
            cat "$POLKIT_LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    guest_log "polkitd running"
}

# Installs the D-Bus policy and starts the system bus.
start_bus() {
    mkdir -p /etc/dbus-1/system.d /run/dbus
    cp "$REPO/config/dbus/icu.hoody.Snapd1.conf" /etc/dbus-1/system.d/
    dbus-daemon --system --fork
    guest_log "system bus started"
}

# Starts a second, private bus at unix socket $1, for a second daemon that tests may restart
# while other tests use the first. Only root connects to it, so it allows everything.
start_private_bus() {
    local socket=$1 config
    config="$(dirname "$socket")/bus.conf"
    mkdir -p "$(dirname "$socket")"
    cat >"$config" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=$socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
BUS
    dbus-daemon --config-file="$config" --fork
    guest_log "private bus started at $socket"
}

# Writes the daemon's configuration to $CONFIG for the roots $CONTAINER_ROOT and
# $INTERNAL_ROOT.
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
    echo "$DAEMON_PID" >"$PID_FILE"
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
