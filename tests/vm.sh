#!/usr/bin/env bash
# Boots the test VM (a Debian kernel with the zfs module, under qemu's software emulation) and
# runs one script inside it as root. The guest sees the host's root filesystem read-only, with
# throw-away overlays on /etc and /var/lib, and RESULTS_DIR shared writable.
#
# Usage: tests/vm.sh RESULTS_DIR GUEST_SCRIPT [ARGUMENTS...]
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: tests/vm.sh RESULTS_DIR GUEST_SCRIPT [ARGUMENTS...]" >&2
    exit 2
fi
results=$(realpath "$1")
script=$(realpath "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)

kernel=$("$here/vm-kernel.sh") || {
    echo "vm: no Debian kernel with a zfs module is installed; run tests/setup.sh" >&2
    exit 1
}
vng=$(command -v vng || true)
if [ -z "$vng" ]; then
    echo "vm: vng (virtme-ng) is not installed; run tests/setup.sh" >&2
    exit 1
fi

mkdir -p "$results"
# Arguments reach the guest through a file, so that no quoting is lost on the way.
printf '%s\0' "$@" >"$results/guest-args"

# --disable-kvm: nested KVM hangs on these hosts, so qemu emulates the CPU (TCG).
exec timeout --signal=KILL "${HOODY_VM_TIMEOUT:-2400}" "$vng" \
    --run "/boot/vmlinuz-$kernel" \
    --disable-kvm \
    --memory "${HOODY_VM_MEMORY:-3G}" \
    --cpus 2 \
    --rwdir "$results" \
    --overlay-rwdir /etc \
    --overlay-rwdir /var/lib \
    --exec "bash $script $results"
