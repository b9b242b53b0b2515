#!/usr/bin/env bash
# Builds the release binaries, their man pages and shell completions, and the Debian package
# hoody-snapd in target/debian/, then checks the package with lintian. Exits non-zero when a
# step fails or when lintian reports an error. tests/setup.sh installs what it needs: cargo-deb,
# lintian, dpkg-dev and the ZFS headers.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'build-deb: %s\n' "$*" >&2; }

target=${CARGO_TARGET_DIR:-$PWD/target}
# cargo-deb reads the generated files from here: its asset paths under target/release/ follow
# CARGO_TARGET_DIR.
generated=$target/release/generated

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
