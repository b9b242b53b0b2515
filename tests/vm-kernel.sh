#!/usr/bin/env bash
# Prints the version of the newest installed Debian kernel that has a zfs
# module built by DKMS, or exits 1 when there is none.
set -euo pipefail
for dir in $(ls -d /lib/modules/*/ 2>/dev/null | sort -rV); do
    version=$(basename "$dir")
    if [ -f "/boot/vmlinuz-$version" ] &&
        find "$dir" -name 'zfs.ko*' -print -quit | grep -q .; then
        echo "$version"
        exit 0
    fi
done
exit 1
