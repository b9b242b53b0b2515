#!/usr/bin/env bash
# Tests hoody-snapd under systemd: lints the Ansible role, then boots the ZFS test VM, where
# tests/guest/systemd-boot.sh boots systemd as PID 1 in a container, installs the product and
# drives it as an operator does. Prints one PASS or FAIL line per check, the seconds per phase,
# and a closing "systemd: N passed, N failed" line. Exits non-zero when any check fails.
#
# Usage: tests/systemd-test.sh [PACKAGE.deb]
# Without an argument, the newest target/debian/hoody-snapd_*.deb is installed when there is
# one, and otherwise the binaries of `cargo build --release`, file by file.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
results=$repo/target/systemd-results
log() { printf 'systemd test: %s\n' "$*" >&2; }

# python3-apt lets Ansible's apt module install a .deb; python3-venv makes the environment
# that ansible-core is installed in.
missing=()
for needed in python3-apt python3-venv; do
    dpkg-query -W -f='${Status}' "$needed" 2>/dev/null | grep -q 'ok installed' || missing+=("$needed")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# ansible-core and ansible-lint, pinned, in an environment of their own so that their
# dependencies stay apart from virtme-ng's. The guest reads the same folder through the
# shared root.
ansible=/opt/hoody-ansible
ansible_requirements=(ansible-core==2.19.14 ansible-lint==26.10.1)
installed_requirements=$("$ansible/bin/pip" freeze 2>/dev/null || true)
for requirement in "${ansible_requirements[@]}"; do
    if ! grep -qixF "$requirement" <<<"$installed_requirements"; then
        log "installing ${ansible_requirements[*]} in $ansible"
        python3 -m venv "$ansible"
        "$ansible/bin/pip" install --quiet "${ansible_requirements[@]}"
        break
    fi
done

package=${1:-}
if [ -z "$package" ]; then
    package=$(ls target/debian/hoody-snapd_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -n "$package" ]; then
    package=$(realpath "$package")
else
    cargo build --release --locked
    package=$repo/target/release
fi
echo "systemd test: installing $package"

rm -rf "$results"
mkdir -p "$results"
passed=0
failed=0

started=$SECONDS
if PATH="$ansible/bin:$PATH" ANSIBLE_LINT_SKIP_SCHEMA_UPDATE=1 \
    "$ansible/bin/ansible-lint" --offline packaging/ansible/roles/hoody_snapd \
    >"$results/ansible-lint.log" 2>&1; then
    passed=$((passed + 1))
    echo "PASS ansible-lint ($((SECONDS - started)) s)"
else
    failed=$((failed + 1))
    echo "FAIL ansible-lint ($((SECONDS - started)) s):"
    sed 's/^/    /' "$results/ansible-lint.log"
fi
lint_seconds=$((SECONDS - started))

started=$SECONDS
# qemu reopens its standard output, which truncates a file that it was redirected to, so its
# output goes through a pipe.
HOODY_VM_TIMEOUT=${HOODY_VM_TIMEOUT:-900} bash tests/vm.sh "$results" \
    tests/guest/systemd-boot.sh "$repo" "$package" "$ansible" 2>&1 | cat || true
vm_seconds=$((SECONDS - started))

guest_passed=0 guest_failed=0 finished=0
if [ -f "$results/systemd-summary" ]; then
    read -r guest_passed guest_failed finished <"$results/systemd-summary"
fi
passed=$((passed + guest_passed))
failed=$((failed + guest_failed))
if [ "$finished" != 1 ]; then
    echo "FAIL vm: the guest script did not finish (VM timeout ${HOODY_VM_TIMEOUT:-900} s, or an error above)"
    failed=$((failed + 1))
fi

echo
echo "seconds per phase:"
echo "  ansible-lint (host) $lint_seconds"
if [ -f "$results/systemd-timings" ]; then
    sed 's/^/  /' "$results/systemd-timings"
    guest_seconds=$(awk '$1 == "guest-total" {print $2}' "$results/systemd-timings")
    echo "  vm boot and power-off $((vm_seconds - ${guest_seconds:-0}))"
fi
echo "  vm in all $vm_seconds"
echo "logs: $results"
echo "systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
