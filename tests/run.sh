#!/usr/bin/env bash
# Runs the whole test suite. It installs what is missing (tests/setup.sh), checks formatting and
# lints, runs the unit tests on the host and checks the systemd unit. It builds the Debian
# package (with lintian) and tests it under systemd in the ZFS test VM, with the Ansible role
# (tests/systemd-test.sh). Then it boots the VM again and runs the integration tests there,
# against a real pool, bus and daemon.
#
# Exits non-zero when any test fails or when the VM tests cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

step() { printf '\n== %s\n' "$*"; }

step "installing what is missing"
bash tests/setup.sh

step "checking formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked --features hoody-snapd/fault-injection -- -D warnings

step "unit tests"
cargo test --workspace --exclude hoody-snapd-tests --locked

step "systemd unit"
bash tests/verify-units.sh

step "Debian package"
package_status=0
bash packaging/build-deb.sh || package_status=$?
systemd_status=0
if [ "$package_status" -eq 0 ]; then
    step "the package under systemd in the ZFS VM"
    deb=$(ls target/debian/hoody-snapd_*.deb | sort -V | tail -n 1)
    bash tests/systemd-test.sh "$deb" 2>&1 | cat || systemd_status=$?
else
    echo "run: the Debian package did not build, so the systemd test did not run" >&2
    systemd_status=1
fi

step "building the integration tests"
# The daemon under test has the test-only fault points (see daemon/src/fault.rs).
cargo build --workspace --locked --features hoody-snapd/fault-injection
mapfile -t binaries < <(
    cargo test -p hoody-snapd-tests --no-run --locked --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    record = json.loads(line)
    if record.get("reason") == "compiler-artifact" and record.get("executable") \
            and record["target"]["kind"] == ["test"]:
        print(record["executable"])
'
)
# tests/guest/run-tests.sh decides which binaries run alone and which run side by side.
if [ "${#binaries[@]}" -eq 0 ]; then
    echo "run: no integration test binaries were built" >&2
    exit 1
fi

step "integration tests in the ZFS VM (${#binaries[@]} binaries)"
results="$repo/target/vm-results"
rm -rf "$results"
mkdir -p "$results"
vm_status=0
# qemu reopens its standard output, which truncates a file that it was redirected to, so its
# output goes through a pipe.
bash tests/vm.sh "$results" tests/guest/run-tests.sh "$repo" "$repo/target/debug" "${binaries[@]}" 2>&1 |
    cat || vm_status=$?

if [ ! -f "$results/summary" ]; then
    echo "run: the VM did not finish the integration tests (vng exit status $vm_status)" >&2
    echo "vm: 0 passed, 1 failed"
    exit 1
fi
read -r passed failed broken <"$results/summary"
echo
echo "daemon log: $results/daemon.log"
if [ "$systemd_status" -ne 0 ]; then
    echo "run: the package build or the systemd test failed; see target/systemd-results" >&2
fi
echo "vm: $passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ "$broken" -ne 0 ] || [ "$passed" -eq 0 ]; then
    echo "run: integration tests failed ($failed failed, $broken test binaries or checks broken)" >&2
    exit 1
fi
if [ "$systemd_status" -ne 0 ]; then
    exit 1
fi
