#!/usr/bin/env bash
# Checks the systemd unit with `systemd-analyze verify`. The unit names /usr/sbin/hoody-snapd and
# /usr/bin/hoody-snap, which a build tree does not have, so the check runs on a copy that names
# the built binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(pwd)/target/debug/hoody-snapd
client=$(pwd)/target/debug/hoody-snap
[ -x "$binary" ] && [ -x "$client" ] || cargo build -p hoody-snapd -p hoody-snap --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s#/usr/sbin/hoody-snapd#$binary#g" -e "s#/usr/bin/hoody-snap#$client#g" \
    systemd/hoody-snapd.service >"$work/hoody-snapd.service"
systemd-analyze verify --man=no "$work/hoody-snapd.service"
grep -q '^SystemdService=dbus-icu.hoody.Snapd1.service$' systemd/icu.hoody.Snapd1.service
grep -q '^Alias=dbus-icu.hoody.Snapd1.service$' systemd/hoody-snapd.service
echo "systemd unit and D-Bus activation file: ok"
