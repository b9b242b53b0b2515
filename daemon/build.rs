//! Generates Rust declarations for libzfs, libzfs_core and libnvpair from the headers of the
//! installed OpenZFS (package libzfslinux-dev on Debian), so the daemon binds the real API of
//! the version it is built against.

use std::env;
use std::path::PathBuf;

fn main() {
    let libraries = pkg_config::Config::new()
        .atleast_version("2.1")
        .probe("libzfs")
        .expect("libzfs >= 2.1 not found by pkg-config; install libzfslinux-dev");
    pkg_config::Config::new()
        .probe("libzfs_core")
        .expect("libzfs_core not found by pkg-config; install libzfslinux-dev");
    println!("cargo:rustc-link-lib=nvpair");

    // The `snapshots_changed` property, which lets the index notice snapshots made or destroyed
    // outside the daemon, exists from OpenZFS 2.2 on.
    println!("cargo::rustc-check-cfg=cfg(zfs_snapshots_changed)");
    if has_snapshots_changed(&libraries.version) {
        println!("cargo:rustc-cfg=zfs_snapshots_changed");
    }

    let mut builder = bindgen::Builder::default()
        .header("src/zfs/wrapper.h")
        // libspl's sys/stat.h uses struct stat64, which glibc declares only with _GNU_SOURCE.
        .clang_arg("-D_GNU_SOURCE")
        .allowlist_function("libzfs_core_init")
        .allowlist_function("libzfs_init")
        .allowlist_function("libzfs_fini")
        .allowlist_function("libzfs_errno")
        .allowlist_function("libzfs_error_description")
        .allowlist_function("libzfs_print_on_error")
        .allowlist_function("lzc_.*")
        .allowlist_function("zfs_open")
        .allowlist_function("zfs_close")
        .allowlist_function("zfs_get_name")
        .allowlist_function("zfs_get_type")
        .allowlist_function("zfs_prop_get")
        .allowlist_function("zfs_prop_get_int")
        .allowlist_function("zfs_prop_set")
        .allowlist_function("zfs_prop_inherit")
        .allowlist_function("zfs_get_user_props")
        // NOTE: these keep the 2.1 signatures in 2.2.1 and later, which added *_v2 variants with
        // flags. OpenZFS 2.2.0 alone changed them in place; building against it fails here.
        .allowlist_function("zfs_iter_filesystems")
        .allowlist_function("zfs_iter_snapshots")
        .allowlist_function("zfs_mount")
        .allowlist_function("zfs_unmount")
        .allowlist_function("zfs_is_mounted")
        .allowlist_function("zfs_version_kernel")
        .allowlist_function("zfs_version_userland")
        .allowlist_function("zpool_open")
        .allowlist_function("zpool_close")
        .allowlist_function("zpool_get_state_str")
        .allowlist_function("zpool_get_prop_int")
        .allowlist_type("zpool_prop_t")
        .allowlist_function("nvlist_.*")
        .allowlist_function("nvpair_.*")
        .allowlist_function("fnvlist_.*")
        .allowlist_type("zfs_prop_t")
        .allowlist_type("zfs_type_t")
        .allowlist_type("zfs_error_t")
        .allowlist_var("ZFS_MAX_DATASET_NAME_LEN")
        .allowlist_var("ZFS_MAXPROPLEN")
        .allowlist_var("ZAP_MAXVALUELEN")
        .allowlist_var("ZAP_MAXNAMELEN")
        .allowlist_var("ZCP_DEFAULT_INSTRLIMIT")
        .allowlist_var("ZCP_DEFAULT_MEMLIMIT")
        .constified_enum_module("zfs_prop_t")
        .constified_enum_module("zpool_prop_t")
        .constified_enum_module("zfs_type_t")
        .derive_default(false)
        .layout_tests(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for path in &libraries.include_paths {
        builder = builder.clang_arg(format!("-I{}", path.display()));
    }

    let bindings = builder
        .generate()
        .expect("bindgen failed on the libzfs headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("zfs_sys.rs");
    bindings
        .write_to_file(out)
        .expect("cannot write zfs_sys.rs");
}

/// Reports whether an OpenZFS version (`2.3.2` or `2.3.2-1`) is 2.2 or later.
fn has_snapshots_changed(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (2, 2)
}
