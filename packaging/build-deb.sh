#!/usr/bin/env bash
# Builds the release binaries, their man pages and shell completions, and the Debian package
# hoody-snapd in target/debian/, then checks the package with lintian. Exits non-zero when a
# step fails or when lintian reports an error. It installs cargo-deb, lintian and dpkg-dev when
# they are missing; tests/setup.sh installs the ZFS headers and the rest of the build.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'build-deb: %s\n' "$*" >&2; }

target=${CARGO_TARGET_DIR:-$PWD/target}
# cargo-deb reads the generated files from here: its asset paths under target/release/ follow
# CARGO_TARGET_DIR.
generated=$target/release/generated

missing=()
for package in dpkg-dev lintian; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# The version is pinned, because its maintainer script snippets and asset rules shape the
# package.
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
    log "installing cargo-deb $cargo_deb_version from crates.io"
    cargo install --locked cargo-deb --version "$cargo_deb_version"
fi

log "building the release binaries"
cargo build --release --locked -p hoody-snapd -p hoody-snap -p hoody-snapd-generate

log "generating man pages and shell completions in $generated"
rm -rf "$generated"
"$target/release/hoody-snapd-generate" "$generated"
# -n keeps the file name and time out of the gzip header, so equal pages give equal bytes.
gzip -9n "$generated"/man/*

log "building the package"
mkdir -p "$target/debian"
rm -f "$target"/debian/hoody-snapd_*.deb
cargo deb -p hoody-snapd --no-build --locked --output "$target/debian/"
deb=$(ls "$target"/debian/hoody-snapd_*.deb)
log "built $deb"

log "checking the package with lintian"
# Warnings that remain are explained in packaging/README.md.
if ! lintian --fail-on error --info "$deb"; then
    log "lintian reported errors in $deb"
    exit 1
fi
log "lintian found no errors in $deb"
