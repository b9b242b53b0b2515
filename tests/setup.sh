#!/usr/bin/env bash
# Installs everything the build and the ZFS test VM need on a Debian 12 host:
# the ZFS user-space libraries and headers, a Debian kernel with zfs-dkms,
# qemu, virtme-ng, dbus, polkit and libclang for bindgen. The host kernel
# cannot load modules, so ZFS runs in a qemu guest. Safe to run again: it
# skips what is already there. packaging/build-deb.sh and tests/systemd-test.sh
# install what only they need.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs Debian packages)"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

sources=/etc/apt/sources.list.d/hoody-testbed.sources
if [ ! -f "$sources" ]; then
    log "adding bookworm-backports and contrib to apt sources"
    cat >"$sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q
elif [ ! -d /var/lib/apt/lists ] || ! ls /var/lib/apt/lists/*backports* >/dev/null 2>&1; then
    apt-get update -q
fi

# Packages from bookworm-backports: ZFS 2.3 with kernel 6.12. qemu-system-x86
# must come from there too, because the preinstalled qemu-utils is the
# backports build and bookworm's qemu conflicts with it. systemd-container
# (systemd-nspawn, for tests that boot systemd in the VM) comes from there as
# well, so that it matches the systemd that the kernel packages pull in.
backports=(linux-image-amd64 linux-headers-amd64 zfs-dkms zfsutils-linux
    libzfslinux-dev qemu-system-x86 systemd-container)
plain=(dbus dbus-daemon polkitd pkexec libclang-dev clang pkg-config
    busybox-static)

# Prints the packages among its arguments that are not installed.
missing_packages() {
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
            grep -q 'install ok installed'; then
            echo "$package"
        fi
    done
}

mapfile -t missing < <(missing_packages "${plain[@]}")
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing from bookworm: ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

mapfile -t missing < <(missing_packages "${backports[@]}")
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing from bookworm-backports: ${missing[*]}"
    # zfs-dkms builds the kernel module here (about 5 minutes on 2 cores).
    apt-get install -y -q -t bookworm-backports --no-install-recommends \
        "${missing[@]}"
fi

if ! command -v vng >/dev/null 2>&1; then
    log "installing virtme-ng from PyPI"
    pip install --quiet 'virtme-ng==1.42'
fi

kernel=$("$(dirname "$0")/vm-kernel.sh" 2>/dev/null || true)
if [ -z "$kernel" ]; then
    log "no Debian kernel with a built zfs module was found under /lib/modules"
    exit 1
fi
log "ready: kernel $kernel with zfs module"
